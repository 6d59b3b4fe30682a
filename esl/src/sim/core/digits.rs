//! Caller DTMF and `play_and_get_digits`, as the capture `play-and-get-digits.md` shows them
//! and FreeSWITCH 1.10 runs them (mod_dptools `play_and_get_digits_function` over
//! `switch_play_and_get_digits`, `switch_ivr_read` and `switch_ivr_collect_digits_count`).
//!
//! One collection (a `Collect` per channel while the application runs):
//! ```text
//!  EXECUTE ─▶ try ─▶ Prompt ──prompt ends / first digit (breaks it)──▶ Wait
//!                      │ (no prompt, or "silence")                     │ digit: digit_timeout again
//!                      └──────────────────────────────────────────────▶│ terminator / max digits / timeout
//!                                                                      ▼
//!                    read result (channel variables) ── valid ──▶ EXECUTE_COMPLETE (_none_)
//!                                                      └ else ──▶ Invalid file ─▶ tries left? try
//!                                                                                  : EXECUTE_COMPLETE
//! ```
//! What the source says and the capture confirms:
//! - The result is only in channel variables: `read_result` (cleared at each try; `success`,
//!   `timeout` or `failure`), `<var_name>` (the digits; cleared at each try, unset again when the
//!   regex refuses them), `<var_name>_invalid` (cleared once at the start, set to refused input),
//!   `read_terminator_used` (never cleared: it survives from earlier reads). A timeout with
//!   fewer than `min` digits is `failure`; refused input after the last try stays `success`.
//! - The invalid file is played after every failed try, the last one included (the capture's
//!   timeout run: 3 x (prompt + timeout + invalid file)).
//! - `timeout` (at least 1000 ms) waits for the first digit, `digit_timeout` (default: timeout)
//!   between digits; the terminator ends input and is not part of the digits; `max` digits end
//!   input; the regex is a PCRE *search* (`switch_regex_match`: `\d+` accepts `*1`; anchor it to
//!   validate the whole input).
//! - PLAYBACK_START/STOP of the prompt and the invalid file reach inbound listeners only (the
//!   outbound socket's `myevents` set has no PLAYBACK_*); the prompt's first digit breaks it.
//!
//! Where a caller's digit goes (FreeSWITCH queues DTMF on the channel; the DTMF event fires when
//! a reader dequeues it: `switch_channel_dequeue_dtmf` in the capture):
//! - while a prompt plays or input is awaited: dequeued at once, a DTMF event, then the reader;
//! - while the invalid file plays (`switch_ivr_play_file` with no input arguments leaves the
//!   queue alone): queued, and dequeued when the next try starts reading, the first breaking its
//!   prompt. 1.10's `switch_ivr_read` does not flush the queue first (older versions of
//!   `switch_play_and_get_digits` did);
//! - while `record` runs: a DTMF event, then its terminators (module `record`);
//! - otherwise (parked under `socket`, other applications): a DTMF event, then gone (park
//!   dequeues and discards), so presses made before the application starts are not collected.
//!
//! Not modelled: `transfer_on_failure` (logged; the application just completes), quoted
//! arguments, `uuid_break` of a running collection.

use super::regex::regex_match;
use super::*;

/// mod_dptools' `char digit_buffer[128]`: a read holding more than this many digits cannot be
/// asked for ("Buffer too small!": the try fails at once).
const DIGIT_BUFFER: usize = 127;
/// Digits a channel holds while nobody reads them; past it further presses are dropped and
/// logged.
const MAX_QUEUED_DIGITS: usize = 128;
/// Tries one collection runs at most. A negative count is, in FreeSWITCH, about four billion
/// tries; nobody means that.
const MAX_TRIES: u32 = 100;
/// Longest `timeout`/`digit_timeout` honoured (a day, as elsewhere in the sim).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// The application's arguments as `play_and_get_digits_function` reads them:
/// `min max tries timeout terminators file invalid_file var_name regexp digit_timeout
/// transfer_on_failure`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct PagdArgs {
    min: usize,
    max: usize,
    tries: u32,
    timeout: Duration,
    terminators: String,
    prompt: String,
    invalid: String,
    var_name: Option<String>,
    regex: Option<String>,
    digit_timeout: Duration,
    transfer_on_failure: Option<String>,
}

impl PagdArgs {
    /// `None` for an empty argument ("No arguments specified.": the application returns).
    pub(super) fn parse(data: &str) -> Option<PagdArgs> {
        let argv = split_args(data, 11);
        let first = argv.first()?;
        let arg = |i: usize| argv.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let min = atoi(first).max(0);
        let max = arg(1).map_or(0, atoi).max(min);
        let tries = arg(2).map_or(0, atoi);
        let tries = if tries < 0 {
            MAX_TRIES
        } else {
            tries.min(i64::from(MAX_TRIES)) as u32
        };
        // `timeout <= 1000` is raised to 1000 (the capture's 5000 stays).
        let timeout_ms = arg(3).map_or(1000, atoi).max(1000);
        let timeout = Duration::from_millis(timeout_ms as u64).min(MAX_WAIT);
        let digit_ms = arg(9).map_or(0, atoi).max(0);
        // switch_ivr_read: no digit_timeout means the first-digit timeout.
        let digit_timeout = if digit_ms == 0 {
            timeout
        } else {
            Duration::from_millis(digit_ms as u64).min(MAX_WAIT)
        };
        Some(PagdArgs {
            min: usize::try_from(min).unwrap_or(usize::MAX),
            max: usize::try_from(max).unwrap_or(usize::MAX),
            tries,
            timeout,
            terminators: arg(4).unwrap_or("#").to_owned(),
            prompt: arg(5).unwrap_or("").to_owned(),
            invalid: arg(6).unwrap_or("").to_owned(),
            var_name: arg(7).map(str::to_owned),
            regex: arg(8).map(str::to_owned),
            digit_timeout,
            transfer_on_failure: arg(10).map(str::to_owned),
        })
    }

    fn is_terminator(&self, d: char) -> bool {
        self.terminators.contains(d)
    }
}

/// `switch_separate_string(data, ' ', argv, n)`: words split at runs of blanks, the last of
/// `n` taking the rest of the line.
pub(super) fn split_args(data: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = data.trim_start_matches(' ');
    while !rest.is_empty() {
        if out.len() + 1 == n {
            out.push(rest.to_owned());
            break;
        }
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        out.push(word.to_owned());
        rest = tail.trim_start_matches(' ');
    }
    out
}

/// C's `atoi`: an optional sign and leading digits, 0 when there are none.
pub(super) fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    // Twelve digits are beyond any count or millisecond value that means something here.
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(12)
        .collect();
    let n = digits.parse::<i64>().unwrap_or(0);
    if neg { -n } else { n }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The prompt plays; the first digit breaks it.
    Prompt,
    /// `switch_ivr_collect_digits_count`: waiting for digits.
    Wait,
    /// The invalid file plays; digits queue on the channel.
    Invalid,
}

/// How a read ended (`switch_status_t` as `switch_ivr_read` sees it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadEnd {
    Success,
    Timeout,
    TooSmall,
    /// A terminator marked `x` in the terminators: the application returns at once.
    Restart,
}

/// A running `play_and_get_digits`.
#[derive(Debug)]
pub(super) struct Collect {
    app_seq: u64,
    args: PagdArgs,
    tries_left: u32,
    phase: Phase,
    buf: String,
    terminator: Option<char>,
    /// The one timer that counts (prompt end, timeout, invalid file end); 0: none.
    timer: u64,
    queued: VecDeque<char>,
}

pub(super) fn set_var_last(c: &mut Channel, name: &str, value: impl Into<String>) {
    // switch_channel_set_variable deletes, then appends: the variable moves to the end, which
    // is the order events list them in.
    c.unset_var(name);
    c.set_var(name, value);
}

impl Switch {
    // ---- caller DTMF ---------------------------------------------------------------------

    /// The caller was answered: its script's clock starts.
    pub(super) fn start_caller_script(&mut self, now: Instant, ch: ChanId) {
        let Some(script) = self.dtmf_scripts.remove(&ch) else {
            return;
        };
        let digits: VecDeque<(Instant, char)> = script
            .timeline()
            .into_iter()
            .map(|(d, c)| (now + d, c))
            .collect();
        if let Some((t, _)) = digits.front() {
            self.schedule(*t, TimerKey::CallerDigit(ch));
            self.caller_digits.insert(ch, digits);
        }
    }

    /// Scripted digits whose time has come.
    pub(super) fn caller_digits_due(&mut self, now: Instant, ch: ChanId) {
        loop {
            let Some(q) = self.caller_digits.get_mut(&ch) else {
                return;
            };
            match q.front() {
                Some((t, _)) if *t > now => {
                    let t = *t;
                    self.schedule(t, TimerKey::CallerDigit(ch));
                    return;
                }
                Some(_) => {}
                None => {
                    self.caller_digits.remove(&ch);
                    return;
                }
            }
            let Some((_, d)) = q.pop_front() else {
                return;
            };
            self.caller_pressed(now, ch, d);
        }
    }

    /// A digit from the caller reaches its channel (see the module doc for where it goes).
    pub(super) fn caller_pressed(&mut self, now: Instant, ch: ChanId, digit: char) {
        let up = self
            .chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none());
        if !up {
            return;
        }
        match self.collectors.get_mut(&ch) {
            Some(col) if col.phase == Phase::Invalid => {
                if col.queued.len() < MAX_QUEUED_DIGITS {
                    col.queued.push_back(digit);
                } else {
                    tracing::warn!(?ch, "fake switch: DTMF queue full, digit dropped");
                }
            }
            Some(_) => {
                self.dtmf_event(now, ch, digit);
                self.collect_digit(now, ch, digit);
            }
            None => {
                self.dtmf_event(now, ch, digit);
                // A running `record` reads it (its terminators).
                self.record_digit(now, ch, digit);
            }
        }
    }

    fn dtmf_event(&mut self, now: Instant, ch: ChanId, digit: char) {
        let post = vec![
            ("DTMF-Digit".into(), digit.to_string()),
            ("DTMF-Duration".into(), "2000".into()),
            ("DTMF-Source".into(), "RTP".into()),
        ];
        self.chan_event(now, ch, "DTMF", vec![], post, false);
    }

    // ---- play_and_get_digits -------------------------------------------------------------

    pub(super) fn pagd_start(&mut self, now: Instant, ch: ChanId, app: &App) {
        let Some(args) = PagdArgs::parse(&app.data) else {
            self.complete_app(now, ch, "_none_");
            return;
        };
        if let (Some(_), Some(v)) = (&args.regex, &args.var_name)
            && let Some(c) = self.chans.get_mut(&ch)
        {
            c.unset_var(&format!("{v}_invalid"));
        }
        if args.tries == 0 {
            self.complete_app(now, ch, "_none_");
            return;
        }
        self.collectors.insert(
            ch,
            Collect {
                app_seq: app.seq,
                tries_left: args.tries,
                args,
                phase: Phase::Prompt,
                buf: String::new(),
                terminator: None,
                timer: 0,
                queued: VecDeque::new(),
            },
        );
        self.pagd_try(now, ch);
    }

    /// Arms the collection's timer (any earlier one no longer counts).
    fn collect_timer(&mut self, ch: ChanId, at: Instant) {
        self.next_collect_timer += 1;
        let id = self.next_collect_timer;
        if let Some(col) = self.collectors.get_mut(&ch) {
            col.timer = id;
            self.schedule(at, TimerKey::Collect(ch, id));
        }
    }

    /// A file's type for PLAYBACK_* and how long it plays (as `playback` plays it); `None`
    /// when it is marked missing.
    fn sound(&self, path: &str) -> Option<(&'static str, Option<Duration>)> {
        if self.cfg.sounds.hidden(path) {
            return None;
        }
        let (kind, mut len) = playback_length(path, self.cfg.default_playback);
        if kind == "file"
            && let Some(known) = self.known_lengths.get(path.trim())
        {
            len = Some(*known);
        }
        Some((kind, len))
    }

    /// Starts playing `path` in `phase`; `false` when there is nothing to play.
    fn collect_play(&mut self, now: Instant, ch: ChanId, path: &str, phase: Phase) -> bool {
        let Some((kind, len)) = self.sound(path) else {
            return false;
        };
        if let Some(col) = self.collectors.get_mut(&ch) {
            col.phase = phase;
            col.timer = 0;
        }
        let post = vec![
            ("Playback-File-Type".into(), kind.to_owned()),
            ("Playback-File-Path".into(), path.to_owned()),
        ];
        self.chan_event(now, ch, "PLAYBACK_START", vec![], post, true);
        // A stream that never ends (local_stream://) plays until a digit or the hangup.
        if let Some(len) = len {
            self.collect_timer(ch, now + len);
        }
        true
    }

    /// One try: `switch_ivr_read` up to the prompt.
    fn pagd_try(&mut self, now: Instant, ch: ChanId) {
        let Some(col) = self.collectors.get_mut(&ch) else {
            return;
        };
        col.buf.clear();
        col.terminator = None;
        col.timer = 0;
        let args = col.args.clone();
        if let Some(c) = self.chans.get_mut(&ch) {
            c.unset_var("read_result");
            if let Some(v) = &args.var_name {
                c.unset_var(v);
            }
        }
        if args.max > DIGIT_BUFFER {
            tracing::warn!(
                ?ch,
                max = args.max,
                "fake switch: pagd max digits past the buffer"
            );
            self.pagd_bad_input(now, ch);
            return;
        }
        let prompt = args.prompt.as_str();
        if !prompt.is_empty() && !prompt.eq_ignore_ascii_case("silence") {
            if !self.collect_play(now, ch, prompt, Phase::Prompt) {
                // FILE NOT FOUND: the read ends before it began, no read_result.
                self.pagd_bad_input(now, ch);
                return;
            }
            // A digit queued meanwhile is the first thing the prompt reads.
            let first = self
                .collectors
                .get_mut(&ch)
                .and_then(|c| c.queued.pop_front());
            if let Some(d) = first {
                self.dtmf_event(now, ch, d);
                self.collect_digit(now, ch, d);
            }
            return;
        }
        self.pagd_wait(now, ch);
    }

    /// `switch_ivr_read` after the prompt: collect what is missing.
    fn pagd_wait(&mut self, now: Instant, ch: ChanId) {
        let Some(col) = self.collectors.get_mut(&ch) else {
            return;
        };
        let len = col.buf.len();
        let a = &col.args;
        if !((a.min > 0 && len < a.min) || len < a.max) {
            self.pagd_read_done(now, ch, ReadEnd::Success);
            return;
        }
        // A terminator pressed during the prompt went into the buffer; it ends the input here.
        if let Some(i) = col.buf.find(|d| a.terminators.contains(d)) {
            col.terminator = col.buf[i..].chars().next();
            col.buf.truncate(i);
            self.pagd_read_done(now, ch, ReadEnd::Success);
            return;
        }
        col.phase = Phase::Wait;
        let wait = if len > 0 { a.digit_timeout } else { a.timeout };
        self.collect_timer(ch, now + wait);
        // Digits queued during the invalid file: dequeued now, one by one.
        loop {
            let next = self
                .collectors
                .get_mut(&ch)
                .filter(|c| c.phase == Phase::Wait)
                .and_then(|c| c.queued.pop_front());
            let Some(d) = next else { break };
            self.dtmf_event(now, ch, d);
            self.collect_digit(now, ch, d);
        }
    }

    /// A dequeued digit, to the running collection.
    fn collect_digit(&mut self, now: Instant, ch: ChanId, d: char) {
        let Some(col) = self.collectors.get_mut(&ch) else {
            return;
        };
        match col.phase {
            Phase::Prompt => {
                // switch_ivr_play_file puts the digit in the buffer (a terminator too) and
                // stops the prompt.
                col.buf.push(d);
                col.timer = 0;
                let prompt = col.args.prompt.clone();
                let post = playback_post(&prompt, "break");
                self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                self.pagd_wait(now, ch);
            }
            Phase::Wait => {
                if col.args.is_terminator(d) {
                    col.terminator = Some(d);
                    self.pagd_read_done(now, ch, ReadEnd::Success);
                    return;
                }
                col.buf.push(d);
                if col.buf.len() >= col.args.max || col.buf.len() >= DIGIT_BUFFER {
                    self.pagd_read_done(now, ch, ReadEnd::Success);
                    return;
                }
                let wait = col.args.digit_timeout;
                self.collect_timer(ch, now + wait);
            }
            // Digits are queued, not read, while the invalid file plays.
            Phase::Invalid => {}
        }
    }

    /// The collection's timer.
    pub(super) fn collect_timeout(&mut self, now: Instant, ch: ChanId, id: u64) {
        let Some(col) = self.collectors.get_mut(&ch).filter(|c| c.timer == id) else {
            return;
        };
        col.timer = 0;
        match col.phase {
            Phase::Prompt => {
                let post = playback_post(&col.args.prompt, "done");
                self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                self.pagd_wait(now, ch);
            }
            Phase::Wait => self.pagd_read_done(now, ch, ReadEnd::Timeout),
            Phase::Invalid => {
                let post = playback_post(&col.args.invalid, "done");
                self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                self.pagd_next_try(now, ch);
            }
        }
    }

    /// The end of `switch_ivr_read` (its variables), then `switch_play_and_get_digits`'s
    /// verdict on the try.
    fn pagd_read_done(&mut self, now: Instant, ch: ChanId, end: ReadEnd) {
        let Some(col) = self.collectors.get_mut(&ch) else {
            return;
        };
        col.timer = 0;
        let mut status = end;
        let a = &col.args;
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if let Some(t) = col.terminator {
            set_var_last(c, "read_terminator_used", t.to_string());
            // `+#`: the terminator is kept in the digits; `x#`: kept, and the application
            // returns at once.
            if let Some(p) = a.terminators.find(t)
                && let Some(prev) = a.terminators[..p].chars().next_back()
                && (prev == '+' || prev == 'x')
            {
                col.buf.push(t);
                if prev == 'x' {
                    status = ReadEnd::Restart;
                }
            }
        } else if a.terminators.starts_with('=') {
            // `=#`: a terminator is required.
            status = ReadEnd::TooSmall;
        }
        if a.min > 0 && col.buf.len() < a.min {
            status = ReadEnd::TooSmall;
        }
        let result = match status {
            ReadEnd::Success => "success",
            ReadEnd::Timeout => "timeout",
            ReadEnd::TooSmall | ReadEnd::Restart => "failure",
        };
        set_var_last(c, "read_result", result);
        if status != ReadEnd::Restart
            && a.max == 1
            && col.buf.len() == 1
            && col.buf.chars().all(|d| a.is_terminator(d))
        {
            col.buf.clear();
        }
        if let Some(v) = &a.var_name
            && !col.buf.is_empty()
        {
            set_var_last(c, v, col.buf.clone());
        }
        // switch_play_and_get_digits.
        if status == ReadEnd::Restart {
            self.pagd_complete(now, ch);
            return;
        }
        if status == ReadEnd::Timeout && col.buf.len() >= a.min {
            status = ReadEnd::Success;
        }
        if a.min == 0 && col.buf.is_empty() && c.var("read_terminator_used").is_some() {
            self.pagd_complete(now, ch);
            return;
        }
        if status == ReadEnd::Success && !col.buf.is_empty() {
            match &a.regex {
                None => {
                    self.pagd_complete(now, ch);
                    return;
                }
                Some(re) if regex_match(&col.buf, re) => {
                    self.pagd_complete(now, ch);
                    return;
                }
                Some(_) => {
                    if let Some(v) = &a.var_name {
                        c.unset_var(v);
                        set_var_last(c, &format!("{v}_invalid"), col.buf.clone());
                    }
                }
            }
        }
        self.pagd_bad_input(now, ch);
    }

    /// A failed try: the invalid file, then the next try.
    fn pagd_bad_input(&mut self, now: Instant, ch: ChanId) {
        let Some(file) = self.collectors.get(&ch).map(|c| c.args.invalid.clone()) else {
            return;
        };
        // No invalid file (or a missing one): switch_ivr_play_file returns at once.
        if file.is_empty() || !self.collect_play(now, ch, &file, Phase::Invalid) {
            self.pagd_next_try(now, ch);
        }
    }

    fn pagd_next_try(&mut self, now: Instant, ch: ChanId) {
        let Some(col) = self.collectors.get_mut(&ch) else {
            return;
        };
        col.tries_left = col.tries_left.saturating_sub(1);
        if col.tries_left > 0 {
            self.pagd_try(now, ch);
            return;
        }
        if let Some(t) = &col.args.transfer_on_failure {
            tracing::info!(?ch, target = %t, "fake switch: pagd transfer_on_failure is not modelled");
        }
        self.pagd_complete(now, ch);
    }

    fn pagd_complete(&mut self, now: Instant, ch: ChanId) {
        let Some(col) = self.collectors.remove(&ch) else {
            return;
        };
        if self
            .chans
            .get(&ch)
            .and_then(|c| c.current.as_ref())
            .is_some_and(|a| a.seq == col.app_seq)
        {
            self.complete_app(now, ch, "_none_");
        }
    }

    /// The channel hangs up mid-collection: the file playing stops; a read waiting for
    /// digits ends with `failure` (`switch_ivr_collect_digits_count` leaves its loop with the
    /// read's failed status). The hangup then completes the application, as for any other.
    pub(super) fn collect_hangup(&mut self, now: Instant, ch: ChanId) {
        let Some(col) = self.collectors.remove(&ch) else {
            return;
        };
        match col.phase {
            Phase::Prompt | Phase::Invalid => {
                let path = if col.phase == Phase::Prompt {
                    &col.args.prompt
                } else {
                    &col.args.invalid
                };
                let post = playback_post(path, "done");
                self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
            }
            Phase::Wait => {
                if let Some(c) = self.chans.get_mut(&ch) {
                    set_var_last(c, "read_result", "failure");
                }
            }
        }
    }

    /// The application is cut short (a transfer): its file stops, nothing is set.
    pub(super) fn collect_abort(&mut self, now: Instant, ch: ChanId) {
        let Some(col) = self.collectors.remove(&ch) else {
            return;
        };
        let path = match col.phase {
            Phase::Prompt => &col.args.prompt,
            Phase::Invalid => &col.args.invalid,
            Phase::Wait => return,
        };
        let post = playback_post(path, "break");
        self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
    }

    /// Forgets a channel's digits (it is gone).
    pub(super) fn forget_digits(&mut self, ch: ChanId) {
        self.collectors.remove(&ch);
        self.dtmf_scripts.remove(&ch);
        self.caller_digits.remove(&ch);
        self.forget_record(ch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_as_mod_dptools_reads_them() {
        let a = PagdArgs::parse(
            r"1 4 3 5000 # tone_stream://%(200,0,440) tone_stream://%(200,0,300) digits \d+ 2000",
        )
        .unwrap();
        assert_eq!((a.min, a.max, a.tries), (1, 4, 3));
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.digit_timeout, Duration::from_secs(2));
        assert_eq!(a.terminators, "#");
        assert_eq!(a.var_name.as_deref(), Some("digits"));
        assert_eq!(a.regex.as_deref(), Some(r"\d+"));
        assert_eq!(a.transfer_on_failure, None);
        // Defaults and clamps: max follows min, timeout at least 1 s, digit timeout = timeout,
        // terminator `#`, negative tries bounded.
        let b = PagdArgs::parse("3  1 -1 200").unwrap();
        assert_eq!((b.min, b.max, b.tries), (3, 3, MAX_TRIES));
        assert_eq!(b.timeout, Duration::from_secs(1));
        assert_eq!(b.digit_timeout, Duration::from_secs(1));
        assert_eq!(b.terminators, "#");
        let c = PagdArgs::parse("1 1 1 3000 # p i v re 0 9999 XML default").unwrap();
        assert_eq!(c.transfer_on_failure.as_deref(), Some("9999 XML default"));
        assert_eq!(PagdArgs::parse(""), None);
        assert_eq!(
            PagdArgs::parse("x y z").map(|a| (a.min, a.max, a.tries)),
            Some((0, 0, 0))
        );
    }

    #[test]
    fn atoi_reads_a_prefix_and_never_panics() {
        assert_eq!(atoi("12ab"), 12);
        assert_eq!(atoi("-7"), -7);
        assert_eq!(atoi("+3"), 3);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi("99999999999999999999999"), 999_999_999_999);
    }
}
