//! The fake switch's `play_and_get_digits` and caller DTMF scripts against the capture
//! `play-and-get-digits.md` (real FreeSWITCH 1.10), in virtual time, every message through the
//! real codecs as on a socket.
//!
//! Run: `cargo nextest run -p switchyard-esl --features sim -E 'binary(sim_pagd)'`.
#![cfg(feature = "sim")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use switchyard_esl::codec::{CommandDecoder, EslCodec, Event, Message, SwitchCodec};
use switchyard_esl::sim::{
    ConnId, ConnKind, DtmfPress, DtmfScript, InboundCall, Output, ScenarioFile, SimConfig, Switch,
};
use tokio_util::codec::Encoder;

/// The capture's argument: min 1, max 4, 3 tries, 5 s timeout, `#`, 200 ms prompt (440 Hz),
/// 200 ms invalid tone (300 Hz), into `digits`, `\d+`, 2 s between digits.
const CAPTURED: &str =
    r"1 4 3 5000 # tone_stream://%(200,0,440) tone_stream://%(200,0,300) digits \d+ 2000";
const PROMPT: &str = "tone_stream://%(200,0,440)";
const INVALID: &str = "tone_stream://%(200,0,300)";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

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

fn script(presses: &[(u64, &str)], gap: Duration) -> DtmfScript {
    let presses = presses
        .iter()
        .map(|(after, d)| DtmfPress::new(ms(*after), d).unwrap())
        .collect();
    DtmfScript::new(presses).unwrap().with_digit_gap(gap)
}

/// One caller on an outbound socket, plus an inbound `event plain ALL` listener (the only one
/// that sees PLAYBACK_*).
struct Call {
    sw: Switch,
    now: Instant,
    /// The outbound socket and the inbound listener.
    o: ConnId,
    c: ConnId,
    uuid: String,
    answered: Instant,
    seen: BTreeMap<ConnId, Vec<(Instant, Event)>>,
}

impl Call {
    fn new(call: InboundCall) -> Call {
        Call::with(call, None)
    }

    fn scripted(script: Option<DtmfScript>) -> Call {
        Call::with(InboundCall::default(), script)
    }

    fn with(call: InboundCall, script: Option<DtmfScript>) -> Call {
        let cfg = SimConfig {
            inbound_target: Some("127.0.0.1:8094".into()),
            ..SimConfig::default()
        };
        let now = Instant::now();
        let mut sw = Switch::new(cfg, 11, now);
        match script {
            Some(s) => sw.place_scripted_call(now, call, s),
            None => sw.place_inbound_call(now, call),
        }
        .unwrap();
        Call::attach(sw, now)
    }

    /// Takes the first outbound socket the switch opens (advancing up to a minute for it),
    /// then connects, subscribes and answers as the capture's client does.
    fn attach(mut sw: Switch, mut now: Instant) -> Call {
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
            answered: now,
            seen: BTreeMap::new(),
        };
        call.cmd(c, "auth ClueCon");
        call.cmd(c, "event plain ALL");
        call.cmd(o, "connect");
        call.cmd(o, "myevents");
        call.cmd(o, "linger");
        call.execute("answer", "");
        call.answered = call.now;
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

    fn pump(&mut self) {
        while let Some(out) = self.sw.poll_output() {
            if let Output::Send(conn, msg) = out {
                let mut b = BytesMut::new();
                SwitchCodec::default().encode(&msg, &mut b).unwrap();
                let decoded = EslCodec::default()
                    .decode_message(&mut b)
                    .expect("our own bytes decode")
                    .expect("one whole message");
                if let Message::Event(e) = decoded {
                    self.sw.handle_flushed(conn, 1);
                    self.seen.entry(conn).or_default().push((self.now, e));
                }
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

    /// Advances until the `play_and_get_digits` completes (at most a minute).
    fn until_done(&mut self) -> (Duration, Event) {
        for _ in 0..6000 {
            if let Some(x) = self.completion() {
                return x;
            }
            self.advance(ms(10));
        }
        panic!("play_and_get_digits never completed");
    }

    /// Its CHANNEL_EXECUTE_COMPLETE on the outbound socket, timed from the answer.
    fn completion(&self) -> Option<(Duration, Event)> {
        self.events(self.o)
            .into_iter()
            .find(|(_, e)| {
                e.name().as_deref() == Some("CHANNEL_EXECUTE_COMPLETE")
                    && e.header("Application").as_deref() == Some("play_and_get_digits")
            })
            .map(|(t, e)| (t.duration_since(self.answered), e))
    }

    fn events(&self, conn: ConnId) -> Vec<(Instant, Event)> {
        self.seen.get(&conn).cloned().unwrap_or_default()
    }

    /// DTMF digits the socket saw, with their times from the answer.
    fn dtmf(&self) -> Vec<(Duration, String)> {
        self.named(self.o, "DTMF")
            .into_iter()
            .map(|(t, e)| (t, e.header("DTMF-Digit").unwrap().into_owned()))
            .collect()
    }

    fn named(&self, conn: ConnId, name: &str) -> Vec<(Duration, Event)> {
        self.events(conn)
            .into_iter()
            .filter(|(_, e)| e.name().as_deref() == Some(name))
            .map(|(t, e)| (t.duration_since(self.answered), e))
            .collect()
    }

    /// PLAYBACK_START/STOP on the inbound listener: (time, name, path, status).
    fn playbacks(&self) -> Vec<(Duration, String, String, String)> {
        self.events(self.c)
            .into_iter()
            .filter(|(_, e)| e.name().is_some_and(|n| n.starts_with("PLAYBACK_")))
            .map(|(t, e)| {
                (
                    t.duration_since(self.answered),
                    e.name().unwrap().into_owned(),
                    e.header("Playback-File-Path").unwrap().into_owned(),
                    e.header("Playback-Status")
                        .map(|s| s.into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn var(e: &Event, name: &str) -> Option<String> {
    e.header(&format!("variable_{name}"))
        .map(|v| v.into_owned())
}

/// The variables play_and_get_digits reports (decoded), in the order the event lists them.
fn result_vars(e: &Event) -> Vec<(String, String)> {
    e.headers()
        .iter()
        .filter_map(|h| {
            let full = h.name();
            let n = full.strip_prefix("variable_")?;
            if ![
                "digits",
                "digits_invalid",
                "read_result",
                "read_terminator_used",
            ]
            .contains(&n)
            {
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

// ---- the capture's three runs ----------------------------------------------------------------

#[test]
fn valid_entry_ends_at_the_terminator_with_the_captured_variables() {
    // o1: `12#` 0.4 s after the prompt started (the prompt is over by then).
    let mut call = Call::scripted(Some(script(&[(420, "12#")], Duration::ZERO)));
    call.execute("play_and_get_digits", CAPTURED);
    let (at, done) = call.until_done();
    assert_eq!(at, ms(420));
    assert_eq!(
        done.header("Application-Response").as_deref(),
        Some("_none_")
    );
    assert_eq!(
        done.header("Application-UUID").as_deref(),
        Some("app-play_and_get_digits")
    );
    assert_eq!(done.header("Application-Data").as_deref(), Some(CAPTURED));
    // The capture's order: read_terminator_used, read_result, digits.
    assert_eq!(
        result_vars(&done),
        kv(&[
            ("read_terminator_used", "#"),
            ("read_result", "success"),
            ("digits", "12")
        ])
    );
    let digits: Vec<String> = call.dtmf().into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        digits,
        ["1", "2", "#"],
        "the terminator is a DTMF event too"
    );
    assert_eq!(
        call.sw.channel_var(&call.uuid, "digits").as_deref(),
        Some("12")
    );
    // The prompt played out before the digits; PLAYBACK_* only reach the inbound listener.
    assert_eq!(
        call.playbacks(),
        [
            (ms(0), "PLAYBACK_START".into(), PROMPT.into(), String::new()),
            (
                ms(200),
                "PLAYBACK_STOP".into(),
                PROMPT.into(),
                "done".into()
            ),
        ]
    );
    assert!(call.named(call.o, "PLAYBACK_START").is_empty());
}

#[test]
fn silence_times_out_three_times_with_the_invalid_file_between_and_fails() {
    // o2: 3 x (200 ms prompt + 5 s timeout + 200 ms invalid tone) = 16.2 s.
    let mut call = Call::new(InboundCall::default());
    call.execute("play_and_get_digits", CAPTURED);
    let (at, done) = call.until_done();
    assert_eq!(at, ms(16_200));
    assert_eq!(result_vars(&done), kv(&[("read_result", "failure")]));
    let starts: Vec<(Duration, String)> = call
        .playbacks()
        .into_iter()
        .filter(|p| p.1 == "PLAYBACK_START")
        .map(|p| (p.0, p.2))
        .collect();
    assert_eq!(
        starts,
        [
            (ms(0), PROMPT.to_owned()),
            (ms(5200), INVALID.to_owned()),
            (ms(5400), PROMPT.to_owned()),
            (ms(10_600), INVALID.to_owned()),
            (ms(10_800), PROMPT.to_owned()),
            (ms(16_000), INVALID.to_owned()),
        ]
    );
}

#[test]
fn refused_input_sets_digits_invalid_and_read_result_stays_success() {
    // o3: `*#` 0.42 s into every try; `*` is no `\d+`, so each try plays the invalid tone.
    let mut call = Call::scripted(Some(script(
        &[(420, "*#"), (620, "*#"), (620, "*#")],
        Duration::ZERO,
    )));
    call.execute("play_and_get_digits", CAPTURED);
    let (at, done) = call.until_done();
    // The capture: 1.86 s from EXECUTE to EXECUTE_COMPLETE.
    assert_eq!(at, ms(1860));
    assert_eq!(var(&done, "digits"), None);
    assert_eq!(var(&done, "digits_invalid").as_deref(), Some("*"));
    assert_eq!(var(&done, "read_result").as_deref(), Some("success"));
    assert_eq!(var(&done, "read_terminator_used").as_deref(), Some("#"));
    assert_eq!(call.dtmf().len(), 6);
    let invalid = call
        .playbacks()
        .iter()
        .filter(|p| p.1 == "PLAYBACK_START" && p.2 == INVALID)
        .count();
    assert_eq!(
        invalid, 3,
        "the invalid file after every try, the last one too"
    );
}

// ---- scripts and timing ----------------------------------------------------------------------

#[test]
fn press_two_after_three_seconds_then_1234_pound_one_second_later() {
    // A menu choice, then an account number, each collected by its own play_and_get_digits.
    let mut call = Call::scripted(Some(script(&[(3000, "2"), (1000, "1234#")], ms(150))));
    call.execute(
        "play_and_get_digits",
        "1 1 3 5000 # silence_stream://1000 silence_stream://500 choice ^[1-3]$",
    );
    let (at, done) = call.until_done();
    assert_eq!(at, ms(3000), "max digits (1) ends the input at the press");
    assert_eq!(var(&done, "choice").as_deref(), Some("2"));
    assert_eq!(var(&done, "read_result").as_deref(), Some("success"));
    assert_eq!(var(&done, "read_terminator_used"), None);
    call.seen.clear();
    call.execute(
        "play_and_get_digits",
        r"4 8 3 5000 # silence_stream://200 silence_stream://500 account ^\d{4}$ 3000",
    );
    let (at, done) = call.until_done();
    // 3 s + 1 s, then four more digits 150 ms apart: the terminator comes at 4.6 s.
    assert_eq!(at, ms(4600));
    assert_eq!(var(&done, "account").as_deref(), Some("1234"));
    assert_eq!(var(&done, "read_terminator_used").as_deref(), Some("#"));
    let dtmf = call.dtmf();
    assert_eq!(
        dtmf,
        [
            (ms(4000), "1".into()),
            (ms(4150), "2".into()),
            (ms(4300), "3".into()),
            (ms(4450), "4".into()),
            (ms(4600), "#".into()),
        ]
    );
}

#[test]
fn inter_digit_timeout_ends_a_partial_entry() {
    // Enough digits (min 2): read_result says `timeout`, the digits stand.
    let mut call = Call::scripted(Some(script(&[(1000, "12")], ms(150))));
    call.execute(
        "play_and_get_digits",
        "2 6 1 5000 # silence_stream://100 silence_stream://100 digits \\d+ 2000",
    );
    let (at, done) = call.until_done();
    assert_eq!(at, ms(1150 + 2000));
    assert_eq!(var(&done, "digits").as_deref(), Some("12"));
    assert_eq!(var(&done, "read_result").as_deref(), Some("timeout"));

    // Too few (min 3): failure, yet switch_ivr_read has already set the digits it got.
    let mut call = Call::scripted(Some(script(&[(1000, "12")], ms(150))));
    call.execute(
        "play_and_get_digits",
        "3 6 1 5000 # silence_stream://100 silence_stream://100 digits \\d+ 2000",
    );
    let (at, done) = call.until_done();
    assert_eq!(at, ms(1150 + 2000 + 100), "then the invalid file");
    assert_eq!(var(&done, "read_result").as_deref(), Some("failure"));
    assert_eq!(var(&done, "digits").as_deref(), Some("12"));
}

#[test]
fn a_digit_during_the_prompt_breaks_it_and_counts() {
    let mut call = Call::scripted(Some(script(&[(300, "5"), (100, "6#")], ms(100))));
    call.execute(
        "play_and_get_digits",
        "1 4 1 5000 # silence_stream://2000 silence_stream://100 digits",
    );
    let (at, done) = call.until_done();
    assert_eq!(at, ms(500));
    assert_eq!(var(&done, "digits").as_deref(), Some("56"));
    let p = call.playbacks();
    assert_eq!(
        p[1],
        (
            ms(300),
            "PLAYBACK_STOP".into(),
            "silence_stream://2000".into(),
            "break".into()
        )
    );
}

#[test]
fn presses_before_the_collection_are_dropped_and_presses_during_the_invalid_file_wait() {
    // Pressed while parked: a DTMF event, then gone.
    let mut call = Call::scripted(Some(script(&[(500, "9")], ms(100))));
    call.advance(ms(1000));
    call.execute(
        "play_and_get_digits",
        "1 1 1 1000 # silence_stream://100 silence_stream://100 digits",
    );
    let (_, done) = call.until_done();
    assert_eq!(var(&done, "read_result").as_deref(), Some("failure"));
    assert_eq!(call.dtmf(), [(ms(500), "9".into())]);

    // Pressed during the invalid file: queued, read (and reported) when the next try starts,
    // breaking its prompt at once.
    let mut call = Call::scripted(Some(script(&[(2000, "7")], ms(100))));
    call.execute(
        "play_and_get_digits",
        "1 1 2 1000 # silence_stream://500 silence_stream://1000 digits",
    );
    let (at, done) = call.until_done();
    assert_eq!(at, ms(2500));
    assert_eq!(var(&done, "digits").as_deref(), Some("7"));
    assert_eq!(call.dtmf(), [(ms(2500), "7".into())]);
}

#[test]
fn a_caller_hanging_up_mid_collection_ends_it_with_failure() {
    let mut call = Call::new(InboundCall {
        patience: Some(Duration::from_secs(2)),
        ..Default::default()
    });
    call.execute("play_and_get_digits", CAPTURED);
    call.advance(Duration::from_secs(3));
    let evs = call.named(call.c, "CHANNEL_EXECUTE_COMPLETE");
    let (at, done) = evs
        .iter()
        .find(|(_, e)| e.header("Application").as_deref() == Some("play_and_get_digits"))
        .expect("the application completes as the channel hangs up");
    assert_eq!(*at, Duration::from_secs(2));
    assert_eq!(
        done.header("Application-Response").as_deref(),
        Some("_none_")
    );
    assert_eq!(var(done, "read_result").as_deref(), Some("failure"));
    assert!(!call.sw.has_channel(&call.uuid));
}

#[test]
fn event_lock_sendmsg_runs_it_the_same_way() {
    let mut call = Call::scripted(Some(script(&[(1000, "3#")], ms(100))));
    let o = call.o;
    call.cmd(
        o,
        &format!(
            "sendmsg\ncall-command: execute\nexecute-app-name: play_and_get_digits\n\
             execute-app-arg: {CAPTURED}\nevent-lock: true\nEvent-UUID: locked"
        ),
    );
    let (at, done) = call.until_done();
    assert_eq!(at, ms(1100));
    assert_eq!(done.header("Application-UUID").as_deref(), Some("locked"));
    assert_eq!(var(&done, "digits").as_deref(), Some("3"));
}

#[test]
fn the_older_dtmf_form_still_reaches_the_collector() {
    let mut call = Call::new(InboundCall {
        dtmf: Some((Duration::from_secs(1), "42#".into())),
        ..Default::default()
    });
    call.execute("play_and_get_digits", CAPTURED);
    let (at, done) = call.until_done();
    assert_eq!(at, Duration::from_secs(1));
    assert_eq!(var(&done, "digits").as_deref(), Some("42"));
}

#[test]
fn scenario_callers_follow_the_toml_script() {
    let file = ScenarioFile::from_toml(
        r#"
[inbound]
calls_per_minute = 60.0
max_calls = 1
dtmf_script = [{ after_s = 0.5, digits = "3#" }]
dtmf_digit_gap = { fixed = 0.1 }
"#,
    )
    .unwrap();
    let cfg = SimConfig {
        inbound_target: Some("127.0.0.1:8094".into()),
        scenario: file.scenario,
        switch: file.switch,
        ..SimConfig::default()
    };
    let now = Instant::now();
    let mut call = Call::attach(Switch::new(cfg, 5, now), now);
    call.execute("play_and_get_digits", CAPTURED);
    let (at, done) = call.until_done();
    assert_eq!(at, ms(600));
    assert_eq!(var(&done, "digits").as_deref(), Some("3"));
}

// ---- shapes against the capture --------------------------------------------------------------

/// Header names after the channel's data (the part that says what happened), and the order
/// of the result variables.
fn tail(e: &Event) -> Vec<String> {
    let names: Vec<String> = e.headers().iter().map(|h| h.name().into_owned()).collect();
    let last_channel = names
        .iter()
        .rposition(|n| n.starts_with("Caller-") || n.starts_with("variable_"))
        .map_or(0, |i| i + 1);
    names[last_channel..].to_vec()
}

#[test]
fn event_tails_match_the_capture() {
    let real_o1 = capture("play-and-get-digits.o1.fs2client.raw");
    let real_c1 = capture("play-and-get-digits.c1.fs2client.raw");
    let pick = |evs: &[Event], name: &str, app: Option<&str>| -> Vec<String> {
        let e = evs
            .iter()
            .find(|e| {
                e.name().as_deref() == Some(name)
                    && app.is_none_or(|a| e.header("Application").as_deref() == Some(a))
            })
            .unwrap_or_else(|| panic!("{name} in the capture"));
        tail(e)
    };
    let mut call = Call::scripted(Some(script(&[(420, "12#")], Duration::ZERO)));
    call.execute("play_and_get_digits", CAPTURED);
    let (_, done) = call.until_done();
    let ours_o: Vec<Event> = call.events(call.o).into_iter().map(|(_, e)| e).collect();
    let ours_c: Vec<Event> = call.events(call.c).into_iter().map(|(_, e)| e).collect();
    let pagd = Some("play_and_get_digits");
    for (name, app) in [
        ("CHANNEL_EXECUTE", pagd),
        ("CHANNEL_EXECUTE_COMPLETE", pagd),
        ("DTMF", None),
    ] {
        assert_eq!(
            pick(&ours_o, name, app),
            pick(&real_o1, name, app),
            "{name}"
        );
    }
    for name in ["PLAYBACK_START", "PLAYBACK_STOP"] {
        assert_eq!(
            pick(&ours_c, name, None),
            pick(&real_c1, name, None),
            "{name}"
        );
    }
    let real_done = real_o1
        .iter()
        .find(|e| {
            e.header("Application").as_deref() == pagd
                && e.name().as_deref() == Some("CHANNEL_EXECUTE_COMPLETE")
        })
        .unwrap();
    assert_eq!(result_vars(&done), result_vars(real_done));
    // DTMF events name the dequeue, as the capture does.
    let dtmf = ours_o
        .iter()
        .find(|e| e.name().as_deref() == Some("DTMF"))
        .unwrap();
    let real = real_o1
        .iter()
        .find(|e| e.name().as_deref() == Some("DTMF"))
        .unwrap();
    for h in [
        "Event-Calling-File",
        "Event-Calling-Function",
        "DTMF-Duration",
    ] {
        assert_eq!(dtmf.header(h), real.header(h), "{h}");
    }
}
