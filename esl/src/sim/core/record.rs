//! The dptools `record` application: `record <path> [<time_limit_secs>] [<silence_thresh>]
//! [<silence_hits>]`, a blocking recording of what the channel's caller says (voicemail).
//!
//! Backed by the capture `voicemail-record-app.md` (`record /tmp/vm.wav 10 200 3` over an
//! outbound socket: 2 s of tone, then silence) and FreeSWITCH 1.10's sources:
//! mod_dptools.c `record_function` and `on_dtmf`, switch_ivr_play_say.c
//! `switch_ivr_record_file_event`, switch_core_file.c `switch_core_file_write`.
//!
//! ```text
//!  EXECUTE ─▶ [pre-answer] ─▶ CODEC (read L16) ─▶ RECORD_START ─┬ silence rule / limit (timer)
//!                                                               ├ terminator digit (DTMF)
//!                                                               ├ uuid_break / a transfer
//!                                                               └ hangup (CHANNEL_HANGUP first)
//!  ─▶ file written ─▶ RECORD_STOP ─▶ CODEC (read codec restored) ─▶ EXECUTE_COMPLETE (_none_)
//! ```
//! What the source says and the capture confirms:
//! - Arguments split at blanks (`switch_separate_string`, 4 at most); the limit may start with
//!   `+`; numbers are `switch_atoui` (negative: 0). No argument at all: "No file specified.",
//!   the application returns (`_none_`, nothing else). Blanks only: no path reaches
//!   `switch_ivr_record_file`, which fails after pre-answering, and `record_function` hangs
//!   the channel up DESTINATION_OUT_OF_ORDER.
//! - A relative path goes under `${sound_prefix}` (or the sounds directory); a path with no
//!   `.` gets the read codec's name as extension and is a native recording (no silence
//!   detection: "Can't detect silence on a native recording").
//! - `silence_hits_exhausted=false` before RECORD_START; the read codec is pushed to L16
//!   (a CODEC event; `read_codec`/`read_rate` move to the end of the variables).
//! - Silence rule (only with a threshold): a frame whose mean absolute sample is under the
//!   threshold counts down `silence_hits` seconds of frames (default 3), a louder one resets
//!   the count; at zero `silence_hits_exhausted=true` and the recording ends.
//! - Time limit: checked each frame as `(now - start) > limit` in whole epoch seconds, so the
//!   recording lasts between `limit` and `limit + 1` seconds, depending on where in its second
//!   it started.
//! - Terminators: `on_dtmf` compares the digit with `playback_terminators` (default `*`;
//!   `any` = `1234567890*#`, `none`), sets `playback_terminator_used` (cleared, that is unset,
//!   when the application starts) and breaks the recording.
//! - At the end: `silence_hits_exhausted` (when it fired), `record_record_file_size` and
//!   `record_file_size` (the file's size), `record_seconds`, `record_ms`, `record_samples`
//!   (samples written), each moved to the end of the variables; RECORD_STOP (with
//!   `Record-File-Path`); the read codec restored (CODEC); then CHANNEL_EXECUTE_COMPLETE
//!   `_none_`. No `record_completion_cause` (that is `uuid_record`'s).
//! - RECORD_* and CODEC are not in an outbound socket's `myevents` set: only listeners that
//!   asked for them (the capture's `event plain ALL` link) see them.
//!
//! Audio: what the caller says is its voice message ([`crate::sim::VoiceMessage`]), its tone
//! from the start of its first recording. Silence is no media: the frames FreeSWITCH reads
//! then are comfort noise (`SFF_CNG`), which `switch_ivr_record_file_event` does not write,
//! so the file holds only the speech. That is what the capture shows (its silence was the
//! loopback's CNG; the file is the 1.94 s of tone, not the 4.9 s the recording ran). A SIP
//! caller sending silent RTP would have its silence written; the sim's callers do not.
//! Frames are 20 ms (160 samples at 8 kHz); the WAV is 8 kHz mono 16-bit, a 44-byte header.
//!
//! Not modelled: `record_rate`/`record_sample_rate`, `RECORD_APPEND`, `record_fill_cng`,
//! `record_restart_limit_on_dtmf`, `record_post_process_exec_api`, `execute_on_record_*`,
//! `{...}` file parameters, a file that cannot be opened (the shell creates directories and
//! only logs a failed write), the content of native recordings (written as WAV too).

use super::digits::{atoi, set_var_last, split_args};
use super::*;
use crate::sim::config::{AfterMessage, VoiceMessage};

/// One frame of audio: 20 ms, 160 samples at 8 kHz.
const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: u64 = 160;
const RATE: u64 = 8000;
/// A 16-bit PCM WAV's header (RIFF, `fmt ` of 16 bytes, `data`), as the capture's file has.
const WAV_HEADER: u64 = 44;
/// Longest time limit or silence run honoured (a day, as elsewhere in the sim).
const MAX_SECONDS: u32 = 86_400;
/// Where `switch_ivr_record_file_event` fires its events (the capture's lines).
const AT_START: (&str, &str, u32) = ("switch_ivr_play_say.c", "switch_ivr_record_file_event", 767);
const AT_STOP: (&str, &str, u32) = (
    "switch_ivr_play_say.c",
    "switch_ivr_record_file_event",
    1030,
);

/// `record`'s arguments as `record_function` reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RecordArgs {
    pub(super) path: String,
    /// 0: no limit.
    pub(super) limit_secs: u32,
    /// Silence threshold (mean absolute sample); 0: no silence detection.
    pub(super) thresh: u32,
    /// Seconds of silence that end the recording; 0: 3.
    pub(super) silence_hits_secs: u32,
}

/// `switch_atoui`, bounded.
fn atoui(s: &str) -> u32 {
    u32::try_from(atoi(s).max(0)).unwrap_or(u32::MAX)
}

impl RecordArgs {
    /// `None` when no path is given (an argument of blanks only).
    pub(super) fn parse(data: &str) -> Option<RecordArgs> {
        let argv = split_args(data, 4);
        let path = argv.first()?.clone();
        let arg = |i: usize| argv.get(i).map(String::as_str);
        let limit = arg(1).map_or(0, |l| atoui(l.strip_prefix('+').unwrap_or(l)));
        let hits = arg(3).map_or(0, atoui);
        if limit > MAX_SECONDS || hits > MAX_SECONDS {
            tracing::warn!(
                limit,
                hits,
                "fake switch: record: time limit or silence hits past a day, capped"
            );
        }
        Some(RecordArgs {
            path,
            limit_secs: limit.min(MAX_SECONDS),
            thresh: arg(2).map_or(0, atoui),
            silence_hits_secs: hits.min(MAX_SECONDS),
        })
    }
}

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RecordEnd {
    /// The silence rule fired (`silence_hits_exhausted=true`).
    Silence,
    /// The time limit passed.
    Limit,
    /// A terminator, `uuid_break` or a transfer (`SWITCH_STATUS_BREAK`).
    Break,
    /// The channel hung up.
    Hangup,
}

/// A running `record`.
#[derive(Debug)]
pub(super) struct RecordRun {
    app_seq: u64,
    path: String,
    started: Instant,
    /// What the caller says into it, from `started` (zero: nothing).
    speech: Duration,
    /// Whether that speech scores at least the threshold (resets the silence count).
    loud: bool,
    /// When the silence rule or the limit ends it, and which (`None`: neither applies).
    deadline: Option<(Instant, RecordEnd)>,
    said_hz: Option<u32>,
}

/// `d` in frames, rounded up.
fn frames_ceil(d: Duration) -> u64 {
    let f = FRAME.as_nanos();
    d.as_nanos().div_ceil(f) as u64
}

fn frames_floor(d: Duration) -> u64 {
    (d.as_nanos() / FRAME.as_nanos()) as u64
}

fn frames(n: u64) -> Duration {
    FRAME * u32::try_from(n).unwrap_or(u32::MAX)
}

impl Switch {
    /// `record` starts (its CHANNEL_EXECUTE is out).
    pub(super) fn record_app_start(&mut self, now: Instant, ch: ChanId, app: &App) {
        if app.data.is_empty() {
            // record_function: "No file specified." and return.
            tracing::info!(?ch, "fake switch: record: no file specified");
            self.complete_app(now, ch, "_none_");
            return;
        }
        if let Some(c) = self.chans.get_mut(&ch) {
            // Set to "": switch_channel_set_variable deletes it.
            c.unset_var("playback_terminator_used");
        }
        // switch_ivr_record_file_event pre-answers first.
        if self.chans.get(&ch).is_some_and(|c| !c.answered) {
            self.progress(now, ch, true);
        }
        let Some(args) = RecordArgs::parse(&app.data) else {
            // No file: SWITCH_STATUS_FALSE, and record_function hangs up.
            self.hangup(now, ch, "DESTINATION_OUT_OF_ORDER");
            return;
        };
        let Some(c) = self.chans.get(&ch) else { return };
        let mut path = args.path.clone();
        let mut native = false;
        if !path.contains("://") {
            if !path.starts_with('/') {
                let prefix = c
                    .var("sound_prefix")
                    .map_or_else(|| self.cfg.sounds.sounds_dir.clone(), str::to_owned);
                path = format!("{prefix}/{path}");
            }
            if !path.contains('.') {
                path = format!("{path}.{}", c.codec);
                native = true;
            }
        }
        let said_hz = self.tone_of(ch);
        let message = self.caller_messages.remove(&ch);
        let speech = message.map_or(Duration::ZERO, |m| m.length());
        if let Some(m) = message
            && m.then() == AfterMessage::HangUp
        {
            self.schedule(now + m.length(), TimerKey::MessageEnd(ch));
        }
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        set_var_last(c, "silence_hits_exhausted", "false");
        if !native {
            // The raw codec: switch_core_session_set_read_codec fires CODEC, then sets the
            // read variables.
            c.read_codec_push = Some(("L16", "8000", "128000"));
            self.codec_event(now, ch);
        }
        let post = vec![("Record-File-Path".into(), path.clone())];
        self.chan_event_at(now, ch, "RECORD_START", AT_START, vec![], post, true);

        let loud = crate::sim::tone::speech_score() >= args.thresh;
        let silence = (args.thresh > 0 && !native).then(|| {
            let hits = if args.silence_hits_secs > 0 {
                args.silence_hits_secs
            } else {
                3
            };
            let run = Duration::from_secs(u64::from(hits));
            // The count starts over after the last loud frame.
            let from = if loud { now + speech } else { now };
            from + frames(frames_ceil(run))
        });
        let limit = (args.limit_secs > 0).then(|| {
            // `(switch_epoch_time_now() - start) > limit`, in whole seconds, checked per frame.
            let us = self.us(now);
            let end_us = (us / 1_000_000 + u64::from(args.limit_secs) + 1) * 1_000_000;
            now + frames(frames_ceil(Duration::from_micros(end_us - us)))
        });
        // The limit is checked first in a frame's turn: it wins a tie.
        let deadline = match (silence, limit) {
            (Some(s), Some(l)) if s < l => Some((s, RecordEnd::Silence)),
            (_, Some(l)) => Some((l, RecordEnd::Limit)),
            (Some(s), None) => Some((s, RecordEnd::Silence)),
            (None, None) => None,
        };
        if let Some((t, _)) = deadline {
            self.schedule(t, TimerKey::RecordEnd(ch, app.seq));
        }
        self.records.insert(
            ch,
            RecordRun {
                app_seq: app.seq,
                path,
                started: now,
                speech,
                loud,
                deadline,
                said_hz,
            },
        );
    }

    /// CODEC as switch_core_session_set_read_codec fires it, then its variables.
    fn codec_event(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get(&ch) else { return };
        let (n, r, b) = c
            .read_codec_push
            .unwrap_or((c.codec, c.codec_rate, c.codec_bits));
        let post = vec![
            ("channel-read-codec-name".into(), n.to_owned()),
            ("channel-read-codec-rate".into(), r.to_owned()),
            ("channel-read-codec-bit-rate".into(), b.to_owned()),
        ];
        self.chan_event(now, ch, "CODEC", vec![], post, false);
        if let Some(c) = self.chans.get_mut(&ch) {
            set_var_last(c, "read_codec", n);
            set_var_last(c, "read_rate", r);
        }
    }

    /// The silence rule or the time limit (timer): the recording ends, the application
    /// completes.
    pub(super) fn record_deadline(&mut self, now: Instant, ch: ChanId, seq: u64) {
        let Some(end) = self
            .records
            .get(&ch)
            .filter(|r| r.app_seq == seq)
            .and_then(|r| r.deadline)
            .map(|(_, e)| e)
        else {
            return;
        };
        self.record_finish(now, ch, end);
        self.complete_record_app(now, ch, seq);
    }

    /// A digit the recording dequeued (its DTMF event is out): a terminator ends it.
    pub(super) fn record_digit(&mut self, now: Instant, ch: ChanId, digit: char) {
        let Some(seq) = self.records.get(&ch).map(|r| r.app_seq) else {
            return;
        };
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let terminators = match c.var("playback_terminators") {
            None => "*".to_owned(),
            Some(t) if t.eq_ignore_ascii_case("any") => "1234567890*#".to_owned(),
            Some(t) if t.eq_ignore_ascii_case("none") => String::new(),
            Some(t) => t.to_owned(),
        };
        if !terminators.contains(digit) {
            return;
        }
        set_var_last(c, "playback_terminator_used", digit.to_string());
        self.record_finish(now, ch, RecordEnd::Break);
        self.complete_record_app(now, ch, seq);
    }

    /// `uuid_break` (CF_BREAK): the recording ends, the application completes. `false` when
    /// no recording runs.
    pub(super) fn record_break(&mut self, now: Instant, ch: ChanId) -> bool {
        let Some(seq) = self.records.get(&ch).map(|r| r.app_seq) else {
            return false;
        };
        self.record_finish(now, ch, RecordEnd::Break);
        self.complete_record_app(now, ch, seq);
        true
    }

    fn complete_record_app(&mut self, now: Instant, ch: ChanId, seq: u64) {
        if self
            .chans
            .get(&ch)
            .and_then(|c| c.current.as_ref())
            .is_some_and(|a| a.seq == seq)
        {
            self.complete_app(now, ch, "_none_");
        }
    }

    /// The caller said its message and hangs up.
    pub(super) fn message_end(&mut self, now: Instant, ch: ChanId) {
        if self
            .chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none())
        {
            self.hangup(now, ch, "NORMAL_CLEARING");
        }
    }

    /// The recording ends (`how`): its variables, the file, RECORD_STOP, the read codec back.
    /// The application's completion is the caller's (a hangup completes it itself).
    pub(super) fn record_finish(&mut self, now: Instant, ch: ChanId, how: RecordEnd) {
        let Some(rec) = self.records.remove(&ch) else {
            return;
        };
        let ran = now.saturating_duration_since(rec.started);
        // Speech frames are written (loud or not); silence is CNG and is not. The frame that
        // exhausts the silence count is not written either.
        let mut written = frames_floor(rec.speech.min(ran));
        if how == RecordEnd::Silence && !rec.loud {
            written = written.min(frames_floor(ran).saturating_sub(1));
        }
        let samples = written * FRAME_SAMPLES;
        let size = WAV_HEADER + samples * 2;
        let duration = Duration::from_micros(samples * 1_000_000 / RATE);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if how == RecordEnd::Silence {
            set_var_last(c, "silence_hits_exhausted", "true");
        }
        set_var_last(c, "record_record_file_size", size.to_string());
        set_var_last(c, "record_file_size", size.to_string());
        set_var_last(c, "record_seconds", (samples / RATE).to_string());
        set_var_last(c, "record_ms", (samples / (RATE / 1000)).to_string());
        set_var_last(c, "record_samples", samples.to_string());
        self.recordings_written += 1;
        if self.known_lengths.len() < MAX_KNOWN_LENGTHS {
            self.known_lengths.insert(rec.path.clone(), duration);
        }
        // Written before RECORD_STOP goes out (the shell writes it inline).
        self.out.push_back(Output::WriteRecording(RecordingJob {
            path: rec.path.clone(),
            duration,
            stereo: false,
            sample_rate: RATE as u32,
            masked: Vec::new(),
            said_hz: rec.said_hz,
            heard_hz: vec![(Duration::ZERO, None)],
        }));
        let post = vec![("Record-File-Path".into(), rec.path)];
        self.chan_event_at(now, ch, "RECORD_STOP", AT_STOP, vec![], post, true);
        // switch_core_session_reset: the negotiated read codec again.
        let pushed = self
            .chans
            .get_mut(&ch)
            .and_then(|c| c.read_codec_push.take())
            .is_some();
        if pushed {
            self.codec_event(now, ch);
        }
    }

    /// Forgets a channel's recording and message (it is gone).
    pub(super) fn forget_record(&mut self, ch: ChanId) {
        self.records.remove(&ch);
        self.caller_messages.remove(&ch);
    }

    /// A caller's voice message, until its first recording.
    pub(super) fn set_caller_message(&mut self, ch: ChanId, message: VoiceMessage) {
        self.caller_messages.insert(ch, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_as_record_function_reads_them() {
        let a = RecordArgs::parse("/tmp/vm.wav 10 200 3").unwrap();
        assert_eq!(
            a,
            RecordArgs {
                path: "/tmp/vm.wav".into(),
                limit_secs: 10,
                thresh: 200,
                silence_hits_secs: 3
            }
        );
        let b = RecordArgs::parse("/tmp/x.wav +20").unwrap();
        assert_eq!((b.limit_secs, b.thresh, b.silence_hits_secs), (20, 0, 0));
        let c = RecordArgs::parse("/tmp/x.wav -5 abc 99999999").unwrap();
        assert_eq!(
            (c.limit_secs, c.thresh, c.silence_hits_secs),
            (0, 0, MAX_SECONDS)
        );
        assert_eq!(RecordArgs::parse("   "), None);
        assert_eq!(RecordArgs::parse("a").map(|a| a.limit_secs), Some(0));
    }

    #[test]
    fn frames_round_as_the_read_loop_does() {
        assert_eq!(frames_ceil(Duration::from_millis(21)), 2);
        assert_eq!(frames_floor(Duration::from_millis(39)), 1);
        assert_eq!(frames(50), Duration::from_secs(1));
    }
}
