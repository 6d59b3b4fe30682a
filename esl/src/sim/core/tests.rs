//! The fake's answering-machine detection, inline transfers, broadcasts and sound files,
//! driven in virtual time.

use super::*;
use crate::codec::CommandDecoder;
use bytes::BytesMut;

struct H {
    sw: Switch,
    now: Instant,
    conn: ConnId,
    seen: Vec<(Instant, Event)>,
    answers: Vec<String>,
    forks: Vec<OrekaAction>,
}

impl H {
    fn new() -> H {
        H::with(SimConfig::default())
    }

    fn with(mut cfg: SimConfig) -> H {
        let now = Instant::now();
        let m = &mut cfg.scenario.customers;
        m.answer_delay = Dist::Fixed(1.0);
        m.amd_delay = Dist::Fixed(2.5);
        m.talk_time = Some(Dist::Fixed(60.0));
        m.numbers.insert("+1555M".into(), "machine".into());
        m.numbers.insert("+1555H".into(), "human".into());
        // These tests time events from the originate's start (the job thread's own gap is
        // tested in esl/tests/sim.rs).
        cfg.switch.bgapi_start = Dist::Fixed(0.0);
        let mut sw = Switch::new(cfg, 3, now);
        let conn = sw.connection_opened(now, ConnKind::Inbound);
        let mut h = H {
            sw,
            now,
            conn,
            seen: Vec::new(),
            answers: Vec::new(),
            forks: Vec::new(),
        };
        h.cmd("auth ClueCon");
        h.cmd("event plain CHANNEL_ANSWER CHANNEL_EXECUTE_COMPLETE PLAYBACK_START PLAYBACK_STOP CHANNEL_HANGUP_COMPLETE CUSTOM avmd::beep");
        h
    }

    fn cmd(&mut self, text: &str) {
        let mut wire = BytesMut::from(format!("{text}\n\n").as_bytes());
        let mut dec = CommandDecoder::default();
        while let Ok(Some(frame)) = dec.decode(&mut wire) {
            self.sw.handle_command(self.now, self.conn, frame);
        }
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(out) = self.sw.poll_output() {
            match out {
                Output::Send(c, Message::Event(e)) => {
                    self.sw.handle_flushed(c, 1);
                    self.seen.push((self.now, e));
                }
                Output::Send(_, Message::ApiResponse(b)) => {
                    self.answers.push(String::from_utf8_lossy(&b).into_owned());
                }
                Output::Oreka(action) => self.forks.push(action),
                _ => {}
            }
        }
    }

    /// An `api` command's answer.
    fn api(&mut self, text: &str) -> String {
        self.answers.clear();
        self.cmd(&format!("api {text}"));
        self.answers.pop().unwrap_or_default()
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

    /// When the first event named `name` (and, for EXECUTE_COMPLETE, of `app`) came for `uuid`.
    fn when(&self, uuid: &str, name: &str, app: Option<&str>) -> Option<(Instant, &Event)> {
        self.seen
            .iter()
            .find(|(_, e)| {
                e.unique_id().as_deref() == Some(uuid)
                    && e.name().as_deref() == Some(name)
                    && app.is_none_or(|a| e.header("Application").as_deref() == Some(a))
            })
            .map(|(t, e)| (*t, e))
    }
}

const M: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const HU: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const B: &str = "aaaaaaaa-0000-4000-8000-000000000003";

#[test]
fn amd_on_answer_reports_the_callee_kind_then_the_originate_app_runs() {
    let mut h = H::new();
    let t0 = h.now;
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={M},execute_on_answer=amd}}sofia/gateway/gw/+1555M &park()"
    ));
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={HU},execute_on_answer=amd}}sofia/gateway/gw/+1555H &park()"
    ));
    h.advance(Duration::from_secs(5));
    for (uuid, want) in [(M, "MACHINE"), (HU, "HUMAN")] {
        let (answered, _) = h.when(uuid, "CHANNEL_ANSWER", None).unwrap();
        let (done, e) = h
            .when(uuid, "CHANNEL_EXECUTE_COMPLETE", Some("amd"))
            .unwrap();
        assert_eq!(answered - t0, Duration::from_secs(1));
        assert_eq!(done - answered, Duration::from_millis(2500));
        assert_eq!(e.variable("amd_result").as_deref(), Some(want));
        assert!(e.variable("amd_cause").is_some());
        assert_eq!(e.header("Application-Response").as_deref(), Some("_none_"));
        // Parked after detection, not before.
        assert_eq!(
            h.sw.channel_var(uuid, "current_application").as_deref(),
            Some("park")
        );
    }
}

#[test]
fn avmd_beeps_for_machines_only() {
    let mut h = H::new();
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={B},execute_on_answer=avmd_start}}sofia/gateway/gw/+1555M &park()"
    ));
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={HU},execute_on_answer=avmd_start}}sofia/gateway/gw/+1555H &park()"
    ));
    h.advance(Duration::from_secs(5));
    let (_, beep) = h.when(B, "CUSTOM", None).expect("a beep");
    assert_eq!(beep.header("Event-Subclass").as_deref(), Some("avmd::beep"));
    assert_eq!(beep.header("Beep-Status").as_deref(), Some("DETECTED"));
    assert!(h.when(HU, "CUSTOM", None).is_none());
    // Both legs are parked after avmd_start, not hung up.
    assert!(h.sw.has_channel(B) && h.sw.has_channel(HU));
}

#[test]
fn an_inline_transfer_plays_then_hangs_up() {
    let mut h = H::new();
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={HU}}}sofia/gateway/gw/+1555H &park()"
    ));
    h.advance(Duration::from_secs(2));
    // A recording the switch wrote plays for its own length; others for the default (2 s).
    h.cmd(&format!("api uuid_record {HU} start /tmp/sim-known.wav"));
    h.advance(Duration::from_secs(3));
    h.cmd(&format!("api uuid_record {HU} stop /tmp/sim-known.wav"));
    h.pump();
    while h.sw.poll_output().is_some() {}
    let sent = h.now;
    h.cmd(&format!(
        "api uuid_transfer {HU} playback:/tmp/sim-known.wav,hangup:NORMAL_CLEARING inline"
    ));
    h.advance(Duration::from_secs(10));
    let (start, _) = h.when(HU, "PLAYBACK_START", None).unwrap();
    let (stop, _) = h.when(HU, "PLAYBACK_STOP", None).unwrap();
    let (end, e) = h.when(HU, "CHANNEL_HANGUP_COMPLETE", None).unwrap();
    assert_eq!(start, sent);
    assert_eq!(stop - start, Duration::from_secs(3));
    assert_eq!(end, stop);
    assert_eq!(e.header("Hangup-Cause").as_deref(), Some("NORMAL_CLEARING"));
}

/// Every PLAYBACK_START / PLAYBACK_STOP of `uuid`: (time, name, path, status).
fn playbacks(h: &H, uuid: &str) -> Vec<(Instant, String, String, String)> {
    h.seen
        .iter()
        .filter(|(_, e)| e.unique_id().as_deref() == Some(uuid))
        .filter(|(_, e)| e.name().is_some_and(|n| n.starts_with("PLAYBACK_")))
        .map(|(t, e)| {
            let h = |n: &str| e.header(n).map(|v| v.into_owned()).unwrap_or_default();
            (
                *t,
                h("Event-Name"),
                h("Playback-File-Path"),
                h("Playback-Status"),
            )
        })
        .collect()
}

#[test]
fn broadcasts_queue_behind_each_other_and_break_all_flushes_the_queue() {
    let mut h = H::new();
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={HU}}}sofia/gateway/gw/+1555H &park()"
    ));
    h.advance(Duration::from_secs(2));
    let t0 = h.now;
    // Two files of 2 s each as one broadcast, then one more queued behind it.
    assert_eq!(
        h.api(&format!(
            "uuid_broadcast {HU} file_string://a.wav!b.wav aleg"
        )),
        "+OK Message sent\n"
    );
    h.api(&format!("uuid_broadcast {HU} c.wav aleg"));
    h.advance(Duration::from_secs(10));
    let p = playbacks(&h, HU);
    let names: Vec<(&str, &str, &str)> = p
        .iter()
        .map(|(_, n, path, st)| (n.as_str(), path.as_str(), st.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("PLAYBACK_START", "file_string://a.wav!b.wav", ""),
            ("PLAYBACK_STOP", "file_string://a.wav!b.wav", "done"),
            ("PLAYBACK_START", "c.wav", ""),
            ("PLAYBACK_STOP", "c.wav", "done"),
        ]
    );
    assert_eq!(p[1].0 - t0, Duration::from_secs(4));
    assert_eq!(
        p[2].0, p[1].0,
        "the next broadcast starts when the first ends"
    );

    // Music, a broadcast queued behind it, then `uuid_break all`: both gone.
    h.api(&format!("uuid_broadcast {HU} local_stream://moh aleg"));
    h.api(&format!("uuid_broadcast {HU} d.wav aleg"));
    h.api(&format!("uuid_break {HU} all"));
    h.advance(Duration::from_secs(5));
    let after: Vec<(String, String, String)> = playbacks(&h, HU)[4..]
        .iter()
        .map(|(_, n, p, s)| (n.clone(), p.clone(), s.clone()))
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1].2, "break");
    assert!(after.iter().all(|(_, p, _)| p == "local_stream://moh"));

    // Without `all` only what plays stops; the queued one starts.
    h.api(&format!("uuid_broadcast {HU} local_stream://moh aleg"));
    h.api(&format!("uuid_broadcast {HU} e.wav aleg"));
    h.api(&format!("uuid_break {HU}"));
    h.advance(Duration::from_secs(5));
    let last = playbacks(&h, HU);
    assert!(
        last.iter()
            .any(|(_, n, p, s)| n == "PLAYBACK_STOP" && p == "e.wav" && s == "done")
    );
}

#[test]
fn file_exists_follows_the_configured_sound_files_and_missing_files_do_not_play() {
    let sounds = crate::sim::SoundFiles::default().without("local_stream://moh");
    let mut h = H::with(SimConfig {
        sounds,
        ..SimConfig::default()
    });
    let dir = "/usr/share/freeswitch/sounds";
    assert_eq!(h.api("global_getvar sounds_dir"), dir);
    assert_eq!(
        h.api("global_getvar sound_prefix"),
        format!("{dir}/en/us/callie")
    );
    assert_eq!(
        h.api(&format!(
            "file_exists {dir}/en/us/callie/ivr/8000/ivr-you_are_number.wav"
        )),
        "true"
    );
    assert_eq!(h.api(&format!("file_exists {dir}/music/8000")), "false");
    assert_eq!(h.api("file_exists /nowhere/x.wav"), "false");

    h.cmd(&format!(
        "bgapi originate {{origination_uuid={HU}}}sofia/gateway/gw/+1555H &park()"
    ));
    h.advance(Duration::from_secs(2));
    h.api(&format!("uuid_broadcast {HU} local_stream://moh aleg"));
    h.advance(Duration::from_secs(1));
    assert!(playbacks(&h, HU).is_empty(), "missing music does not play");
    let (_, done) = h
        .when(HU, "CHANNEL_EXECUTE_COMPLETE", Some("playback"))
        .unwrap();
    assert_eq!(
        done.header("Application-Response").as_deref(),
        Some("FILE NOT FOUND")
    );
}

#[test]
fn originate_arguments_split_at_blanks_outside_single_quotes_as_freeswitch_splits_them() {
    // switch_separate_string(.., ' ', ..): quotes group and go, a backslash keeps what follows.
    assert_eq!(
        separate_blank("'&eval(${uuid_bridge a b})'  XML   default"),
        ["&eval(${uuid_bridge a b})", "XML", "default"]
    );
    assert_eq!(
        separate_blank(r"&park() 'John  Doe' \'x"),
        ["&park()", "John  Doe", "'x"]
    );
    assert!(separate_blank("   ").is_empty());
}

#[test]
fn eval_expands_variables_and_api_calls_nested_or_in_either_form() {
    let mut h = H::new();
    assert_eq!(h.api("eval ${echo a}-${echo(b c)}-${nope}"), "a-b c-");
    assert_eq!(h.api("eval ${echo ${echo inner}}"), "inner");
    assert_eq!(h.api("eval plain"), "plain");
}

#[test]
fn without_mod_oreka_module_exists_says_false_and_oreka_record_hangs_the_channel_up() {
    let mut h = H::new();
    assert_eq!(h.api("module_exists mod_oreka"), "false");
    assert_eq!(h.api("module_exists mod_sofia"), "true");
    assert_eq!(h.api("module_exists"), "");
    h.cmd(&format!(
        "bgapi originate {{origination_uuid={HU}}}sofia/gateway/gw/+1555H &park()"
    ));
    h.advance(Duration::from_secs(2));
    assert_eq!(
        h.api(&format!("uuid_broadcast {HU} oreka_record:: aleg")),
        "+OK Message sent\n"
    );
    h.advance(Duration::from_millis(100));
    // switch_core_session_execute_application_get_flags: "Invalid Application".
    let (_, e) = h
        .when(HU, "CHANNEL_HANGUP_COMPLETE", None)
        .expect("hung up");
    assert_eq!(
        e.header("Hangup-Cause").as_deref(),
        Some("DESTINATION_OUT_OF_ORDER")
    );
    assert!(h.forks.is_empty());
}

#[test]
fn module_exists_answers_true_or_false_from_the_configured_module_list() {
    let cfg = SimConfig {
        modules: vec!["mod_sofia".into(), "mod_commands".into()],
        ..SimConfig::default()
    };
    let mut h = H::with(cfg);
    // mod_commands' module_exists_function writes exactly "true" or "false", no line end.
    assert_eq!(h.api("module_exists mod_sofia"), "true");
    assert_eq!(h.api("module_exists mod_avmd"), "false");
    assert_eq!(h.api("module_exists mod_sndfile"), "false");
    let mut h = H::new();
    assert_eq!(
        h.api("module_exists mod_avmd"),
        "true",
        "the fake does avmd"
    );
    assert_eq!(h.api("module_exists mod_local_stream"), "true");
}

#[test]
fn oreka_record_forks_a_bridged_channel_once_and_stop_or_hangup_ends_the_fork() {
    let cfg = SimConfig {
        oreka: Some(OrekaSetup {
            server: "127.0.0.1:5090".parse().unwrap(),
            local_ip: "127.0.0.2".parse().unwrap(),
        }),
        ..SimConfig::default()
    };
    let mut h = H::with(cfg);
    assert_eq!(h.api("module_exists mod_oreka"), "true");
    for uuid in [HU, B] {
        h.cmd(&format!(
            "bgapi originate {{origination_uuid={uuid},sim_tone_hz={}}}sofia/gateway/gw/+1555H &park()",
            if uuid == HU { 440 } else { 1000 }
        ));
    }
    h.advance(Duration::from_secs(2));
    assert!(h.api(&format!("uuid_bridge {HU} {B}")).starts_with("+OK"));
    h.advance(Duration::from_secs(1));
    h.forks.clear();
    // Broadcast into the bridge: it runs between two frames, not after the park.
    h.api(&format!("uuid_broadcast {HU} oreka_record:: aleg"));
    let [
        OrekaAction::Start {
            uuid,
            said,
            heard,
            mux,
            server,
            ..
        },
    ] = h.forks.as_slice()
    else {
        panic!("one fork started: {:?}", h.forks);
    };
    assert_eq!(uuid, HU);
    assert_eq!(
        (said.as_slice(), heard.as_slice()),
        (&[440][..], &[1000][..])
    );
    assert!(!mux);
    assert_eq!(server.port(), 5090);
    // A second oreka_record on a forked channel does nothing ("2 times").
    h.api(&format!("uuid_broadcast {HU} oreka_record:: aleg"));
    assert_eq!(h.forks.len(), 1);
    h.api(&format!("uuid_broadcast {HU} oreka_record::stop aleg"));
    assert_eq!(h.forks.last(), Some(&OrekaAction::Stop { uuid: HU.into() }));
    // Forked again, then the channel hangs up: the media bug closes with it.
    h.api(&format!("uuid_broadcast {HU} oreka_record:: aleg"));
    assert!(matches!(h.forks.last(), Some(OrekaAction::Start { .. })));
    h.api(&format!("uuid_kill {HU}"));
    h.advance(Duration::from_millis(100));
    assert_eq!(h.forks.last(), Some(&OrekaAction::Stop { uuid: HU.into() }));
}
