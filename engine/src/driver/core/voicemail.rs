//! Voicemail (issue 20): a caller sent to a switchyard voicemail box (a flow's voicemail step,
//! a queue exit to a box) hears the greeting and the tone, and FreeSWITCH's `record` takes the
//! message on the caller's own leg into the switch recordings' directory; the file is then
//! checked like a switch recording and filed as a message of the box.
//!
//! ```text
//!   start ─► Record::VoicemailOpened (the message's id names its file)
//!         ─► uuid_break <leg> all (music, queued prompts), answer, playback greeting, beep
//!         ─► once the open row is kept: execute record <path> <max s> <threshold> <hits>
//!   CHANNEL_EXECUTE_COMPLETE of that record (Application-UUID ours) ─► hangup
//!         ─► Media Ingest (wait for the file, check it) ─► Ingested ─► Record::Voicemail
//!   CHANNEL_HANGUP_COMPLETE before that completion ─► Ingest all the same: the file is there
//!         if `record` ran (it writes what it had), not if the caller left during the greeting
//! ```
//!
//! `record` blocks the channel until its silence rule, its time limit or the hangup ends it;
//! it answers only in variables (`record_ms`, `silence_hits_exhausted`; `Application-Response:
//! _none_`), and it drops the trailing silence from the file (esl-captures
//! `voicemail-record-app`). The message's length is the checked file's, not `record_ms`: the
//! file is what is kept.
//!
//! Write before you act: the open row goes first, and `record` is sent only once the writer
//! has kept it, so a restart finds every message that may have a file (the runtime closes an
//! open row from its file, as it does a recording's). The greeting plays meanwhile.

use std::collections::HashMap;
use std::path::PathBuf;

use switchyard_esl::Event;
use tracing::{debug, warn};

use crate::config::Mailbox;
use crate::io::{LegId, Record};
use crate::recording::{
    AudioFigures, RecordingId, RecordingStatus, VoicemailOpen, VoicemailRecord,
};

use super::super::commands::{self, EslRequest, Tracking};
use super::super::media::MediaRequest;
use super::capture::file_name;
use super::{CoreOutput, DriverCore};

/// Messages being taken at once; past it a caller sent to voicemail is hung up (logged).
pub(crate) const MAX_MESSAGES: usize = 10_000;

/// The messages under way, by caller leg and by id.
#[derive(Debug, Default)]
pub(super) struct Messages {
    by_leg: HashMap<LegId, RecordingId>,
    map: HashMap<RecordingId, Message>,
}

#[derive(Debug)]
struct Message {
    leg: LegId,
    mailbox: Mailbox,
    caller_number: String,
    started_unix_ms: u64,
    /// The record number of the open row; `record` goes once the writer kept it.
    barrier: u64,
    /// `record`'s execution id, once sent; `None` while it waits for the open row.
    exec: Option<String>,
    /// The path `record` writes (the switch's side).
    path: String,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Greeting and message: the leg is up and `record` has not completed.
    Taking,
    /// The file is being checked.
    Ingesting,
}

/// The message id for a caller leg: one message per leg, and the same after a replay.
fn message_id(leg: LegId) -> RecordingId {
    // Any fixed bijection of the leg works; mixing the halves keeps it apart from the leg's
    // own uuid and from the engine's recording ids, which are drawn at random.
    RecordingId(leg.0.rotate_left(64) ^ 0x7669_6365_6d61_696c_7669_6365_6d61_696c)
}

impl DriverCore {
    /// The caller legs of the messages being taken.
    pub(super) fn message_legs(&self) -> Vec<LegId> {
        self.messages.by_leg.keys().copied().collect()
    }

    pub(super) fn is_message(&self, id: RecordingId) -> bool {
        self.messages.map.contains_key(&id)
    }

    /// Takes a message from `leg` for `mailbox`.
    pub(super) fn start_voicemail(&mut self, leg: LegId, mailbox: Mailbox, caller_number: String) {
        if self.messages.by_leg.contains_key(&leg) {
            return;
        }
        if self.messages.map.len() >= MAX_MESSAGES {
            warn!(%leg, "too many voicemail messages under way; the caller is hung up");
            self.execute(leg, "hangup", self.cfg.unrouted_cause.clone(), None);
            return;
        }
        let id = message_id(leg);
        let path =
            match commands::switch_record_path(&self.cfg.recording.switch_path, &file_name(id)) {
                Ok(p) => p,
                Err(e) => {
                    warn!(%leg, error = %e, "voicemail cannot be recorded; the caller is hung up");
                    self.execute(leg, "hangup", self.cfg.unrouted_cause.clone(), None);
                    return;
                }
            };
        let started_unix_ms = self.engine.unix_ms(self.now);
        self.record(Record::VoicemailOpened(VoicemailOpen {
            id,
            leg,
            mailbox,
            caller_number: caller_number.clone(),
            started_unix_ms,
        }));
        let barrier = self.records_handed_out();
        self.messages.by_leg.insert(leg, id);
        self.messages.map.insert(
            id,
            Message {
                leg,
                mailbox,
                caller_number,
                started_unix_ms,
                barrier,
                exec: None,
                path,
                state: State::Taking,
            },
        );
        debug!(%leg, ?mailbox, message = %id, "voicemail: greeting the caller");
        // Music on hold and queued prompts run as broadcasts on the leg: only `uuid_break
        // all` drops them (see the module `prompts`); executes sent after it run in order.
        self.prompt_leg_gone(leg);
        self.api_on_leg(leg, format!("uuid_break {leg} all"));
        self.execute(leg, "answer", String::new(), None);
        let vm = self.cfg.voicemail.clone();
        for prompt in [vm.greeting, vm.beep] {
            if !prompt.is_empty() {
                self.execute(leg, "playback", prompt, None);
            }
        }
        self.release_voicemail();
    }

    /// Sends `record` for every message whose open row the writer has kept.
    pub(super) fn release_voicemail(&mut self) {
        let kept = self.records_kept_count();
        let due: Vec<RecordingId> = self
            .messages
            .map
            .iter()
            .filter(|(_, m)| m.exec.is_none() && m.state == State::Taking && m.barrier <= kept)
            .map(|(id, _)| *id)
            .collect();
        let vm = &self.cfg.voicemail;
        let args = format!(
            "{} {} {}",
            vm.max_message.as_secs().max(1),
            vm.silence_threshold,
            vm.silence_hits
        );
        for id in due {
            let Some(m) = self.messages.map.get_mut(&id) else {
                continue;
            };
            let exec = format!("switchyard-vm-{id}");
            m.exec = Some(exec.clone());
            let (leg, arg) = (m.leg, format!("{} {args}", m.path));
            self.execute(leg, "record", arg, Some(exec));
        }
    }

    /// A CHANNEL_EXECUTE_COMPLETE: `true` when it was a message's `record`.
    pub(super) fn voicemail_executed(&mut self, leg: LegId, e: &Event) -> bool {
        let Some(id) = self.messages.by_leg.get(&leg).copied() else {
            return false;
        };
        let Some(m) = self.messages.map.get(&id) else {
            return false;
        };
        if m.exec.is_none() || e.header("Application-UUID").as_deref() != m.exec.as_deref() {
            return false;
        }
        debug!(
            %leg,
            message = %id,
            record_ms = ?e.variable("record_ms"),
            silence = ?e.variable("silence_hits_exhausted"),
            "voicemail: message recorded"
        );
        let up = e.header("Answer-State").as_deref() != Some("hangup");
        if up {
            self.execute(leg, "hangup", "NORMAL_CLEARING".into(), None);
        }
        self.ingest_message(id);
        true
    }

    /// The caller's leg is gone: a message still being taken is checked as it is (`record`
    /// wrote what it had; a caller who left during the greeting left no file).
    pub(super) fn voicemail_leg_gone(&mut self, leg: LegId) {
        if let Some(id) = self.messages.by_leg.get(&leg).copied() {
            self.ingest_message(id);
        }
    }

    fn ingest_message(&mut self, id: RecordingId) {
        let Some(m) = self.messages.map.get_mut(&id) else {
            return;
        };
        if m.state != State::Taking {
            return;
        }
        m.state = State::Ingesting;
        self.messages.by_leg.remove(&m.leg);
        self.out.push_back(CoreOutput::Media(MediaRequest::Ingest {
            id,
            path: self.cfg.recording.switch_files.join(file_name(id)),
            wait: self.cfg.recording.switch_file_wait,
        }));
    }

    /// The media side checked a message's file: `true` when `id` was a message.
    pub(super) fn voicemail_ingested(
        &mut self,
        id: RecordingId,
        path: PathBuf,
        figures: Option<AudioFigures>,
        error: Option<String>,
    ) -> bool {
        if self
            .messages
            .map
            .get(&id)
            .is_none_or(|m| m.state != State::Ingesting)
        {
            return false;
        }
        let Some(m) = self.messages.map.remove(&id) else {
            return false;
        };
        let min = u64::try_from(self.cfg.voicemail.min_message.as_millis()).unwrap_or(u64::MAX);
        let (status, error) = match (&figures, error) {
            (Some(f), None) if f.duration_ms >= min => (RecordingStatus::Completed, None),
            (Some(f), Some(e)) if f.duration_ms >= min => (RecordingStatus::Damaged, Some(e)),
            (Some(_), _) => (
                RecordingStatus::Failed,
                Some("no message: the caller said nothing after the tone".to_owned()),
            ),
            (None, e) => (
                RecordingStatus::Failed,
                Some(e.map_or_else(
                    || "no message: the caller left before the tone".to_owned(),
                    |e| format!("no message: {e}"),
                )),
            ),
        };
        let path = if figures.is_some() {
            path.display().to_string()
        } else {
            String::new()
        };
        debug!(message = %id, ?status, "voicemail: filed");
        self.record(Record::Voicemail(Box::new(VoicemailRecord {
            id,
            leg: m.leg,
            mailbox: m.mailbox,
            caller_number: m.caller_number,
            path,
            started_unix_ms: m.started_unix_ms,
            ended_unix_ms: self.engine.unix_ms(self.now),
            status,
            figures,
            error,
        })));
        true
    }

    /// `sendmsg <leg>` execute on the leg's node, queued on the channel after what is there.
    pub(super) fn execute(&mut self, leg: LegId, app: &str, arg: String, id: Option<String>) {
        let node = self.leg_node(leg);
        self.send_command(
            node,
            vec![EslRequest::Execute {
                leg,
                app: app.to_owned(),
                arg,
                id,
            }],
            Tracking::Other,
            None,
        );
    }

    pub(super) fn api_on_leg(&mut self, leg: LegId, line: String) {
        let node = self.leg_node(leg);
        self.send_command(node, vec![EslRequest::Api(line)], Tracking::Other, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_the_legs_own_and_never_the_leg() {
        let leg = LegId(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        assert_eq!(message_id(leg), message_id(leg));
        assert_ne!(message_id(leg).0, leg.0);
        assert_ne!(message_id(leg), message_id(LegId(leg.0 + 1)));
    }
}
