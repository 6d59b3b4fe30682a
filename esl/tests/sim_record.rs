//! The fake switch's `record` application (voicemail) against the capture
//! `voicemail-record-app.md` (real FreeSWITCH 1.10: `record /tmp/vm.wav 10 200 3` on an outbound
//! socket's channel, 2 s of tone then silence) and mod_dptools' `record_function` /
//! `switch_ivr_record_file_event`, in virtual time, every message through the real codecs.
//!
//! Run: `cargo nextest run -p switchyard-esl --features sim -E 'binary(sim_record)'`.
#![cfg(feature = "sim")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use switchyard_esl::codec::{CommandDecoder, EslCodec, Event, Message, SwitchCodec};
use switchyard_esl::sim::rng::Dist;
use switchyard_esl::sim::{
    AfterMessage, ConnId, ConnKind, DtmfPress, DtmfScript, InboundCall, InboundModel, Output,
    Scenario, SimConfig, Switch, tone, wav,
};
use tokio_util::codec::Encoder;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The capture's WAV header (1.94 s, 8 kHz mono 16-bit, 31084 bytes).
const CAPTURED_HEADER: &str =
    "524946466479000057415645666d74201000000001000100401f0000803e0000020010006461746140790000";

fn capture(name: &str) -> Vec<Event> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/esl-captures/raw")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while let Some(m) = codec.decode_message(&mut buf).expect("capture decodes") {
        if let Message::Event(e) = m {
            out.push(e);
        }
    }
    out
}

/// A fresh directory for one test's files.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "switchyard-sim-record-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn speaker(len: Duration, then: AfterMessage) -> DtmfScript {
    DtmfScript::new(vec![])
        .unwrap()
        .with_message(len, then)
        .unwrap()
}

/// One caller on an outbound socket (`myevents`), plus an inbound `event plain ALL` listener,
/// as the capture's client had them. Recordings are written as the shell writes them.
struct Call {
    sw: Switch,
    now: Instant,
    o: ConnId,
    c: ConnId,
    uuid: String,
    /// When `record` was sent.
    t0: Instant,
    seen: BTreeMap<ConnId, Vec<(Instant, Event)>>,
    written: Vec<String>,
}

impl Call {
    fn scripted(script: Option<DtmfScript>) -> Call {
        let cfg = SimConfig {
            inbound_target: Some("127.0.0.1:8094".into()),
            ..SimConfig::default()
        };
        let now = Instant::now();
        let mut sw = Switch::new(cfg, 7, now);
        match script {
            Some(s) => sw.place_scripted_call(now, InboundCall::default(), s),
            None => sw.place_inbound_call(now, InboundCall::default()),
        }
        .unwrap();
        Call::attach(sw, now)
    }

    /// Takes the first outbound socket and connects, but nobody answers the caller.
    fn unanswered() -> Call {
        let cfg = SimConfig {
            inbound_target: Some("127.0.0.1:8094".into()),
            ..SimConfig::default()
        };
        let now = Instant::now();
        let mut sw = Switch::new(cfg, 7, now);
        sw.place_inbound_call(now, InboundCall::default()).unwrap();
        Call::attach_with(sw, now, false)
    }

    fn attach(sw: Switch, now: Instant) -> Call {
        Call::attach_with(sw, now, true)
    }

    /// Takes the first outbound socket the switch opens (advancing up to a minute for it),
    /// then connects, subscribes and answers as the capture's client does.
    fn attach_with(mut sw: Switch, mut now: Instant, answer: bool) -> Call {
        let c = sw.connection_opened(now, ConnKind::Inbound);
        let end = now + Duration::from_secs(60);
        let (o, uuid) = loop {
            let mut found = None;
            while let Some(out) = sw.poll_output() {
                if let Output::OpenOutbound { conn, uuid, .. } = out {
                    found = found.or(Some((conn, uuid)));
                }
            }
            if let Some(x) = found {
                break x;
            }
            let t = sw
                .poll_timeout()
                .filter(|t| *t <= end)
                .expect("a caller arrives");
            now = t;
            sw.handle_timeout(now);
        };
        sw.outbound_connected(now, o);
        let mut call = Call {
            sw,
            now,
            o,
            c,
            uuid,
            t0: now,
            seen: BTreeMap::new(),
            written: Vec::new(),
        };
        call.cmd(c, "auth ClueCon");
        call.cmd(c, "event plain ALL");
        call.cmd(o, "connect");
        call.cmd(o, "myevents");
        call.cmd(o, "linger");
        if answer {
            call.execute("answer", "");
        }
        call.seen.clear();
        call
    }

    fn cmd(&mut self, conn: ConnId, text: &str) {
        let mut wire = BytesMut::from(format!("{text}\n\n").as_bytes());
        let mut dec = CommandDecoder::default();
        while let Some(frame) = dec.decode(&mut wire).expect("command frames") {
            self.sw.handle_command(self.now, conn, frame);
        }
        self.pump();
    }

    fn execute(&mut self, app: &str, arg: &str) {
        let arg = if arg.is_empty() {
            String::new()
        } else {
            format!("\nexecute-app-arg: {arg}")
        };
        let text = format!(
            "sendmsg\ncall-command: execute\nexecute-app-name: {app}{arg}\nEvent-UUID: app-{app}"
        );
        self.cmd(self.o, &text);
    }

    /// `record <arg>` now; times below count from here.
    fn record(&mut self, arg: &str) {
        self.t0 = self.now;
        self.execute("record", arg);
    }

    fn pump(&mut self) {
        while let Some(out) = self.sw.poll_output() {
            match out {
                Output::Send(conn, msg) => {
                    let mut b = BytesMut::new();
                    SwitchCodec::default().encode(&msg, &mut b).unwrap();
                    let decoded = EslCodec::default()
                        .decode_message(&mut b)
                        .expect("our own bytes decode")
                        .expect("one whole message");
                    if let Message::Event(e) = decoded {
                        // The file is complete before RECORD_STOP goes out.
                        if e.name().as_deref() == Some("RECORD_STOP") {
                            let p = e.header("Record-File-Path").unwrap().into_owned();
                            assert!(self.written.contains(&p), "{p} written before RECORD_STOP");
                        }
                        self.sw.handle_flushed(conn, 1);
                        self.seen.entry(conn).or_default().push((self.now, e));
                    }
                }
                Output::WriteRecording(job) => {
                    wav::write_recording(&job).expect("the recording is written");
                    self.written.push(job.path.clone());
                }
                _ => {}
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.sw.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.sw.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    /// Advances until `record` completes on the outbound socket (at most two minutes): its
    /// time from `record` and its CHANNEL_EXECUTE_COMPLETE.
    fn until_done(&mut self) -> (Duration, Event) {
        for _ in 0..12_000 {
            if let Some(x) = self.completion(self.o) {
                return x;
            }
            self.advance(ms(10));
        }
        panic!("record never completed");
    }

    fn completion(&self, conn: ConnId) -> Option<(Duration, Event)> {
        self.events(conn)
            .into_iter()
            .find(|(_, e)| {
                e.name().as_deref() == Some("CHANNEL_EXECUTE_COMPLETE")
                    && e.header("Application").as_deref() == Some("record")
            })
            .map(|(t, e)| (t.duration_since(self.t0), e))
    }

    fn events(&self, conn: ConnId) -> Vec<(Instant, Event)> {
        self.seen.get(&conn).cloned().unwrap_or_default()
    }

    fn named(&self, conn: ConnId, name: &str) -> Vec<(Duration, Event)> {
        self.events(conn)
            .into_iter()
            .filter(|(_, e)| e.name().as_deref() == Some(name))
            .map(|(t, e)| (t.duration_since(self.t0), e))
            .collect()
    }

    /// Event names on `conn` (CHANNEL_EXECUTE* with their application), in order.
    fn order(&self, conn: ConnId) -> Vec<String> {
        self.events(conn)
            .into_iter()
            .map(|(_, e)| {
                let n = e.name().unwrap().into_owned();
                match e.header("Application") {
                    Some(a) if n.starts_with("CHANNEL_EXECUTE") => format!("{n} {a}"),
                    _ => n,
                }
            })
            .collect()
    }
}

fn var(e: &Event, name: &str) -> Option<String> {
    e.header(&format!("variable_{name}"))
        .map(|v| v.into_owned())
}

/// The variables `record` reports, in the order the event lists them.
fn record_vars(e: &Event) -> Vec<(String, String)> {
    e.headers()
        .iter()
        .filter_map(|h| {
            let full = h.name();
            let n = full.strip_prefix("variable_")?;
            if !(n.starts_with("record_") || n == "silence_hits_exhausted") {
                return None;
            }
            Some((n.to_owned(), e.header(&full)?.into_owned()))
        })
        .collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Channels, rate, bits and samples of a WAV, and its samples.
fn read_wav(path: &str) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let samples = r.samples::<i16>().map(Result::unwrap).collect();
    (spec, samples)
}

fn file_size(path: &str) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

// ---- the capture ----------------------------------------------------------------------------

#[test]
fn the_captured_voicemail_ends_silence_hits_after_the_speech_and_keeps_only_the_speech() {
    let d = dir("capture");
    let path = d.join("vm.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(Duration::from_secs(2), AfterMessage::Silence)));
    call.record(&format!("{path} 10 200 3"));
    let (at, done) = call.until_done();
    // 2 s of speech + 3 s of silence (the capture: 4.97 s).
    assert_eq!(at, Duration::from_secs(5));
    assert_eq!(
        done.header("Application-Response").as_deref(),
        Some("_none_")
    );
    assert_eq!(
        done.header("Application-UUID").as_deref(),
        Some("app-record")
    );
    // The capture's variables, in the capture's order; the size is the file's.
    let size = file_size(&path).to_string();
    assert_eq!(size, "32044");
    assert_eq!(
        record_vars(&done),
        kv(&[
            ("silence_hits_exhausted", "true"),
            ("record_record_file_size", &size),
            ("record_file_size", &size),
            ("record_seconds", "2"),
            ("record_ms", "2000"),
            ("record_samples", "16000"),
        ])
    );
    // Only the speech: 2 s of the caller's tone, 8 kHz mono 16-bit; the silence is not in it.
    let (spec, samples) = read_wav(&path);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    assert_eq!(samples.len(), 16_000);
    let hz = call.sw.tone_hz(&call.uuid).unwrap();
    let on = tone::goertzel(&samples[..4000], 8000, f64::from(hz));
    let off = tone::goertzel(&samples[..4000], 8000, 1000.0);
    assert!(
        on > 100.0 * off,
        "the caller's tone ({hz} Hz) is in the file"
    );
    assert!(
        samples[15_000..].iter().any(|s| s.abs() > 1000),
        "speech to the end"
    );
    assert_eq!(
        call.sw.channel_var(&call.uuid, "record_ms").as_deref(),
        Some("2000")
    );
    // The call goes on after the recording.
    assert!(call.sw.has_channel(&call.uuid));
}

#[test]
fn a_message_as_long_as_the_captured_one_gives_the_captured_file_header_and_variables() {
    let d = dir("header");
    let path = d.join("vm.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(ms(1940), AfterMessage::Silence)));
    call.record(&format!("{path} 10 200 3"));
    let (at, done) = call.until_done();
    assert_eq!(at, ms(4940));
    let bytes = std::fs::read(&path).unwrap();
    let header: String = bytes[..44].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(header, CAPTURED_HEADER);
    assert_eq!(bytes.len(), 31_084);
    // Exactly the captured values.
    let captured = capture("voicemail-record-app.o1.fs2client.raw")
        .into_iter()
        .find(|e| {
            e.name().as_deref() == Some("CHANNEL_EXECUTE_COMPLETE")
                && e.header("Application").as_deref() == Some("record")
        })
        .unwrap();
    assert_eq!(record_vars(&done), record_vars(&captured));
}

#[test]
fn record_start_and_stop_reach_the_inbound_listener_only_between_execute_and_complete() {
    let d = dir("order");
    let path = d.join("vm.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(Duration::from_secs(2), AfterMessage::Silence)));
    call.record(&format!("{path} 10 200 3"));
    call.until_done();
    // The capture's c1: EXECUTE, CODEC (raw L16 read), RECORD_START ... RECORD_STOP, CODEC
    // (the codec back), EXECUTE_COMPLETE.
    assert_eq!(
        call.order(call.c),
        [
            "CHANNEL_EXECUTE record",
            "CODEC",
            "RECORD_START",
            "RECORD_STOP",
            "CODEC",
            "CHANNEL_EXECUTE_COMPLETE record",
        ]
    );
    // The capture's o1 (myevents): the application's own events only.
    assert_eq!(
        call.order(call.o),
        ["CHANNEL_EXECUTE record", "CHANNEL_EXECUTE_COMPLETE record"]
    );
    let start = &call.named(call.c, "RECORD_START")[0];
    let stop = &call.named(call.c, "RECORD_STOP")[0];
    assert_eq!(start.0, Duration::ZERO);
    assert_eq!(stop.0, Duration::from_secs(5));
    for (e, line) in [(&start.1, "767"), (&stop.1, "1030")] {
        assert_eq!(e.header("Record-File-Path").as_deref(), Some(path.as_str()));
        assert_eq!(
            e.header("Event-Calling-Function").as_deref(),
            Some("switch_ivr_record_file_event")
        );
        assert_eq!(e.header("Event-Calling-Line-Number").as_deref(), Some(line));
        assert_eq!(e.header("Channel-Read-Codec-Name").as_deref(), Some("L16"));
    }
    assert_eq!(
        var(&start.1, "silence_hits_exhausted").as_deref(),
        Some("false")
    );
    assert_eq!(var(&start.1, "read_codec").as_deref(), Some("L16"));
    assert_eq!(var(&stop.1, "record_ms").as_deref(), Some("2000"));
    // The read codec is back when the application completes.
    let (_, done) = call.completion(call.c).unwrap();
    assert_eq!(
        done.header("Channel-Read-Codec-Name").as_deref(),
        Some("PCMU")
    );
    assert_eq!(var(&done, "read_codec").as_deref(), Some("PCMU"));
    let codecs = call.named(call.c, "CODEC");
    assert_eq!(
        codecs
            .iter()
            .map(|(_, e)| e.header("channel-read-codec-name").unwrap().into_owned())
            .collect::<Vec<_>>(),
        ["L16", "PCMU"]
    );
}

#[test]
fn record_events_carry_the_captured_headers_and_sequence() {
    let d = dir("shape");
    let path = d.join("vm.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(ms(500), AfterMessage::Silence)));
    call.record(&format!("{path} 10 200 3"));
    call.until_done();
    let captured = capture("voicemail-record-app.c1.fs2client.raw");
    for name in ["RECORD_START", "RECORD_STOP"] {
        let theirs = captured
            .iter()
            .find(|e| e.name().as_deref() == Some(name))
            .unwrap();
        let ours = &call.named(call.c, name)[0].1;
        // The same event-level headers, and the file path last.
        let own = |e: &Event| -> Vec<String> {
            e.headers()
                .iter()
                .map(|h| h.name().to_string())
                .filter(|n| {
                    n.starts_with("Event-") || n == "Record-File-Path" || n == "Channel-State"
                })
                .collect()
        };
        assert_eq!(own(ours), own(theirs), "{name}");
        assert_eq!(
            ours.headers().iter().last().map(|h| h.name().to_string()),
            Some("Record-File-Path".to_owned())
        );
    }
    // Sequence numbers: RECORD_STOP, CODEC, EXECUTE_COMPLETE consecutive (55894..55896).
    let seq = |n: &str| -> u64 {
        call.named(call.c, n)
            .last()
            .unwrap()
            .1
            .header("Event-Sequence")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(seq("CODEC"), seq("RECORD_STOP") + 1);
    assert_eq!(seq("CHANNEL_EXECUTE_COMPLETE"), seq("RECORD_STOP") + 2);
}

// ---- the other ways it ends -----------------------------------------------------------------

#[test]
fn the_time_limit_ends_a_caller_who_keeps_talking_within_a_second_past_the_limit() {
    let d = dir("limit");
    let path = d.join("long.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(
        Duration::from_secs(60),
        AfterMessage::Silence,
    )));
    call.record(&format!("{path} 5 200 3"));
    let (at, done) = call.until_done();
    // `(now - start) > limit` in whole epoch seconds: more than 5 s, at most 6 s, whole frames.
    assert!(
        at > Duration::from_secs(5) && at <= Duration::from_secs(6),
        "{at:?}"
    );
    assert_eq!(at.as_nanos() % ms(20).as_nanos(), 0);
    // The file is all the caller said until then; the silence rule never fired.
    let rec_ms: u128 = var(&done, "record_ms").unwrap().parse().unwrap();
    assert_eq!(rec_ms, at.as_millis());
    assert_eq!(
        var(&done, "silence_hits_exhausted").as_deref(),
        Some("false")
    );
    assert_eq!(
        var(&done, "record_file_size").unwrap(),
        file_size(&path).to_string()
    );
    let (_, samples) = read_wav(&path);
    assert_eq!(samples.len() as u128, rec_ms * 8);
}

#[test]
fn without_a_threshold_or_limit_only_a_terminator_ends_it_and_the_terminator_is_reported() {
    let d = dir("dtmf");
    let path = d.join("dtmf.wav").to_string_lossy().into_owned();
    // `#` is not a terminator by default (`playback_terminators` unset: `*`); `*` is.
    let presses = vec![
        DtmfPress::new(ms(1000), "#").unwrap(),
        DtmfPress::new(ms(1500), "*").unwrap(),
    ];
    let script = DtmfScript::new(presses)
        .unwrap()
        .with_message(Duration::from_secs(30), AfterMessage::Silence)
        .unwrap();
    let mut call = Call::scripted(Some(script));
    call.record(&path);
    let (at, done) = call.until_done();
    assert_eq!(at, ms(2500));
    assert_eq!(var(&done, "playback_terminator_used").as_deref(), Some("*"));
    assert_eq!(var(&done, "record_ms").as_deref(), Some("2500"));
    assert_eq!(
        var(&done, "silence_hits_exhausted").as_deref(),
        Some("false")
    );
    let digits: Vec<String> = call
        .named(call.o, "DTMF")
        .into_iter()
        .map(|(_, e)| e.header("DTMF-Digit").unwrap().into_owned())
        .collect();
    assert_eq!(digits, ["#", "*"]);
    assert!(call.sw.has_channel(&call.uuid));

    // `playback_terminators=none`: the digit is only reported; uuid_break ends it.
    let mut call = Call::scripted(Some(
        DtmfScript::new(vec![DtmfPress::new(ms(500), "*").unwrap()]).unwrap(),
    ));
    call.execute("set", "playback_terminators=none");
    call.record(&d.join("none.wav").to_string_lossy());
    call.advance(Duration::from_secs(3));
    assert!(
        call.completion(call.o).is_none(),
        "`*` is no terminator now"
    );
    let uuid = call.uuid.clone();
    call.cmd(call.c, &format!("api uuid_break {uuid}"));
    let (at, done) = call.completion(call.o).unwrap();
    assert_eq!(at, Duration::from_secs(3));
    assert_eq!(var(&done, "playback_terminator_used"), None);
    assert_eq!(var(&done, "record_ms").as_deref(), Some("0"));
}

#[test]
fn a_caller_who_hangs_up_mid_recording_leaves_what_it_said_and_hangup_comes_first() {
    let d = dir("hangup");
    let path = d.join("hup.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(Duration::from_secs(3), AfterMessage::HangUp)));
    call.record(&format!("{path} 30 200 5"));
    let (at, done) = call.until_done();
    assert_eq!(at, Duration::from_secs(3));
    assert_eq!(
        done.header("Application-Response").as_deref(),
        Some("_none_")
    );
    assert_eq!(var(&done, "record_ms").as_deref(), Some("3000"));
    assert_eq!(
        var(&done, "silence_hits_exhausted").as_deref(),
        Some("false")
    );
    assert_eq!(file_size(&path), 44 + 3 * 16_000);
    let c_order = call.order(call.c);
    let pos = |n: &str| {
        c_order
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} in {c_order:?}"))
    };
    // CHANNEL_HANGUP (the caller's BYE), then the recording stops, then the application
    // completes, then the hangup completes.
    assert!(pos("CHANNEL_HANGUP") < pos("RECORD_STOP"));
    assert!(pos("RECORD_STOP") < pos("CHANNEL_EXECUTE_COMPLETE record"));
    assert!(pos("CHANNEL_EXECUTE_COMPLETE record") < pos("CHANNEL_HANGUP_COMPLETE"));
    let stop = &call.named(call.c, "RECORD_STOP")[0].1;
    assert_eq!(stop.header("Answer-State").as_deref(), Some("hangup"));
    assert_eq!(
        var(stop, "record_file_size"),
        Some((44 + 48_000).to_string())
    );
    // On the socket: CHANNEL_HANGUP, then the record's completion.
    let o_order = call.order(call.o);
    let h = o_order.iter().position(|x| x == "CHANNEL_HANGUP").unwrap();
    let r = o_order
        .iter()
        .position(|x| x == "CHANNEL_EXECUTE_COMPLETE record")
        .unwrap();
    assert!(h < r, "{o_order:?}");
    assert!(!call.sw.has_channel(&call.uuid));
    let (_, samples) = read_wav(&path);
    assert_eq!(samples.len(), 24_000);
}

#[test]
fn a_caller_who_says_nothing_is_ended_by_the_silence_rule_with_an_empty_file() {
    let d = dir("silent");
    let path = d.join("empty.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(None);
    // No silence_hits: 3 s.
    call.record(&format!("{path} 10 200"));
    let (at, done) = call.until_done();
    assert_eq!(at, Duration::from_secs(3));
    assert_eq!(
        var(&done, "silence_hits_exhausted").as_deref(),
        Some("true")
    );
    assert_eq!(var(&done, "record_samples").as_deref(), Some("0"));
    assert_eq!(var(&done, "record_file_size").as_deref(), Some("44"));
    assert_eq!(file_size(&path), 44);
}

#[test]
fn a_threshold_above_the_callers_voice_takes_the_speech_for_silence() {
    let d = dir("thresh");
    let path = d.join("quiet.wav").to_string_lossy().into_owned();
    let mut call = Call::scripted(Some(speaker(
        Duration::from_secs(10),
        AfterMessage::Silence,
    )));
    // The voice scores about 6258; a threshold of 20000 never hears it.
    call.record(&format!("{path} 0 20000 2"));
    let (at, done) = call.until_done();
    assert_eq!(at, Duration::from_secs(2));
    assert_eq!(
        var(&done, "silence_hits_exhausted").as_deref(),
        Some("true")
    );
    // The frames were written (speech, not CNG), all but the one that exhausted the count.
    assert_eq!(var(&done, "record_ms").as_deref(), Some("1980"));
}

#[test]
fn record_without_a_file_returns_at_once_and_leaves_the_call_up() {
    let mut call = Call::scripted(None);
    call.record("");
    let (at, done) = call.completion(call.o).expect("completes at once");
    assert_eq!(at, Duration::ZERO);
    assert_eq!(
        done.header("Application-Response").as_deref(),
        Some("_none_")
    );
    assert!(call.named(call.c, "RECORD_START").is_empty());
    assert!(call.named(call.c, "RECORD_STOP").is_empty());
    assert_eq!(var(&done, "record_ms"), None);
    assert!(call.sw.has_channel(&call.uuid));
}

#[test]
fn a_relative_path_goes_under_the_sounds_directory() {
    let d = dir("relative");
    let mut call = Call::scripted(None);
    call.execute("set", &format!("sound_prefix={}", d.display()));
    call.record("msg.wav 1");
    call.until_done();
    let start = &call.named(call.c, "RECORD_START")[0].1;
    let want = d.join("msg.wav").to_string_lossy().into_owned();
    assert_eq!(
        start.header("Record-File-Path").as_deref(),
        Some(want.as_str())
    );
    assert_eq!(file_size(&want), 44);
}

#[test]
fn record_on_an_unanswered_caller_pre_answers_it_first() {
    let d = dir("early");
    let mut call = Call::unanswered();
    call.record(&format!("{} 1", d.join("early.wav").display()));
    call.until_done();
    let order = call.order(call.c);
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(pos("CHANNEL_EXECUTE record") < pos("CHANNEL_PROGRESS_MEDIA"));
    assert!(pos("CHANNEL_PROGRESS_MEDIA") < pos("RECORD_START"));
    assert!(!order.iter().any(|n| n == "CHANNEL_ANSWER"), "{order:?}");
    let start = &call.named(call.c, "RECORD_START")[0].1;
    assert_eq!(start.header("Answer-State").as_deref(), Some("early"));
}

// ---- who speaks -----------------------------------------------------------------------------

#[test]
fn a_message_is_said_once_the_second_recording_hears_silence() {
    let d = dir("twice");
    let mut call = Call::scripted(Some(speaker(Duration::from_secs(1), AfterMessage::Silence)));
    call.record(&format!("{} 10 200 1", d.join("a.wav").display()));
    let (_, first) = call.until_done();
    assert_eq!(var(&first, "record_ms").as_deref(), Some("1000"));
    call.seen.clear();
    call.record(&format!("{} 10 200 1", d.join("b.wav").display()));
    let (at, second) = call.until_done();
    assert_eq!(at, Duration::from_secs(1));
    assert_eq!(var(&second, "record_ms").as_deref(), Some("0"));
}

#[test]
fn generated_callers_leave_the_scenarios_message() {
    let s = Scenario::from_toml(
        "[inbound]\ncalls_per_minute = 1.0\nmessage = { fixed = 2.0 }\nafter_message = \"hang_up\"\n",
    )
    .unwrap();
    let model = s.inbound.unwrap();
    assert_eq!(model.message, Some(Dist::Fixed(2.0)));
    assert_eq!(model.after_message, AfterMessage::HangUp);
    assert!(Scenario::from_toml("[inbound]\nafter_message = \"sing\"\n").is_err());
    // The default: callers say nothing.
    assert_eq!(InboundModel::default().message, None);

    let d = dir("generated");
    let path = d.join("gen.wav").to_string_lossy().into_owned();
    let mut cfg = SimConfig {
        inbound_target: Some("127.0.0.1:8094".into()),
        ..SimConfig::default()
    };
    cfg.scenario.inbound = Some(InboundModel {
        calls_per_minute: 60.0,
        max_calls: Some(1),
        message: Some(Dist::Fixed(2.0)),
        after_message: AfterMessage::HangUp,
        ..Default::default()
    });
    let now = Instant::now();
    let sw = Switch::new(cfg, 3, now);
    let mut call = Call::attach(sw, now);
    call.record(&format!("{path} 20 200 3"));
    let (at, done) = call.until_done();
    assert_eq!(at, Duration::from_secs(2));
    assert_eq!(var(&done, "record_ms").as_deref(), Some("2000"));
    assert!(
        !call.sw.has_channel(&call.uuid),
        "hung up after the message"
    );
}

#[test]
fn voice_messages_are_bounded() {
    let s = DtmfScript::new(vec![]).unwrap();
    assert!(
        s.clone()
            .with_message(Duration::from_secs(3601), AfterMessage::Silence)
            .is_err()
    );
    let ok = s
        .with_message(Duration::from_secs(3600), AfterMessage::HangUp)
        .unwrap();
    let m = ok.message().unwrap();
    assert_eq!(
        (m.length(), m.then()),
        (Duration::from_secs(3600), AfterMessage::HangUp)
    );
}
