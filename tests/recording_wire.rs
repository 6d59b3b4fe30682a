//! Recording against the fake switch over loopback: the driver's recorder endpoint answers
//! the fake's recorder legs (real SIP and RTP), or the fake's `uuid_record` writes the file;
//! the WAV that comes out is read back and checked by frequency. Every fake channel "speaks"
//! its own tone (callers about 400-480 Hz, agents about 960-1040 Hz; `SimHandle::tone_hz`).

#[path = "wire_support/mod.rs"]
mod wire_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_engine::config::{Announcements, EngineConfig};
use switchyard_engine::driver::{Driver, DriverConfig, DriverHandle, EndpointSetup};
use switchyard_engine::recording::{
    RecordingCapture, RecordingPolicy, RecordingRecord, RecordingStatus, Requester, SpanKind,
};
use switchyard_engine::{
    AgentConfig, AgentId, CallOutcome, Command, Engine, LegId, Membership, Presence, QueueConfig,
    QueueId, Record, RecordingAction, RecordingMode, Strategy,
};
use switchyard_esl::client::{Auth, Client, ClientConfig};
use switchyard_esl::sim::{
    AgentBehaviour, AgentModel, AgentOverride, CustomerModel, Dist, InboundCall, OrekaSetup,
    PhoneTransfer, Scenario, SimConfig, SimHandle,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wire_support::Log;

const QUEUE: QueueId = QueueId(1);
const NUMBER: &str = "5000";
const REFERRING_PHONE: u32 = 1050;

struct World {
    sim: SimHandle,
    api: DriverHandle,
    observer: Client,
    records: Log<Record>,
    dir: PathBuf,
    _driver: Driver,
}

/// How the world records.
struct Setup {
    policy: RecordingPolicy,
    /// `None`: no recorder endpoint. `Some(dial)`: the endpoint runs and legs are dialled with
    /// `dial` (`{addr}` is its SIP address).
    recorder_dial: Option<String>,
    /// mod_oreka on the fake switch.
    oreka: Oreka,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Oreka {
    /// Not loaded.
    Off,
    /// Loaded, its `oreka.conf` naming the endpoint.
    ToEndpoint,
    /// Loaded, its `oreka.conf` naming a port where nothing listens.
    Elsewhere,
}

impl World {
    async fn start(name: &str, setup: Setup) -> World {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-recording-wire-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let esl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // mod_oreka's `oreka.conf` names the endpoint's SIP address before either runs: a
        // free port is picked for it here.
        let free_port = || {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let sip_bind: std::net::SocketAddr = if setup.oreka == Oreka::ToEndpoint {
            free_port()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        let oreka = match setup.oreka {
            Oreka::Off => None,
            Oreka::ToEndpoint => Some(sip_bind),
            Oreka::Elsewhere => Some(free_port()),
        }
        .map(|server| OrekaSetup {
            server,
            local_ip: "127.0.0.2".parse().unwrap(),
        });
        let sim = switchyard_esl::sim::spawn(
            esl,
            SimConfig {
                inbound_target: Some(outbound.local_addr().unwrap().to_string()),
                scenario: Scenario {
                    seed: 5,
                    agents: AgentModel {
                        extensions: vec!["1000-1099".into()],
                        behaviour: AgentBehaviour {
                            answer_delay: Dist::Fixed(0.2),
                            ..AgentBehaviour::default()
                        },
                        // The phone at 1050 presses its transfer key 1.5 s into a call.
                        overrides: vec![AgentOverride {
                            extensions: vec![REFERRING_PHONE.to_string()],
                            behaviour: AgentBehaviour {
                                answer_delay: Dist::Fixed(0.2),
                                transfer: Some(PhoneTransfer {
                                    after: Dist::Fixed(1.5),
                                    to: "2000".into(),
                                }),
                                ..AgentBehaviour::default()
                            },
                        }],
                    },
                    customers: CustomerModel::default(),
                    inbound: None,
                },
                oreka,
                ..SimConfig::default()
            },
            42,
        );
        let mut cfg = DriverConfig::new(sim.local_addr().to_string(), "ClueCon");
        cfg = cfg.route(NUMBER, QUEUE);
        cfg.recording.live_dir = dir.join("live");
        // The fake switch writes `uuid_record` files on this host: the shared directory is
        // the same path on both sides.
        cfg.recording.switch_path = format!("{}/{{file}}", dir.join("switch").display());
        cfg.recording.switch_files = dir.join("switch");
        cfg.recording.switch_file_wait = Duration::from_secs(5);
        if let Some(dial) = setup.recorder_dial {
            cfg.recording.endpoint = Some(EndpointSetup {
                sip_bind,
                rtp_bind: "127.0.0.1:0".parse().unwrap(),
                max_recordings: 100,
            });
            cfg.recording.recorder_dial = Some(dial);
            cfg.recording.oreka = setup.oreka != Oreka::Off;
            // A fork whose INVITE does not come is given up this soon (default 10 s).
            cfg.recording.recorder_timeout = Duration::from_secs(1);
        }
        let engine = Engine::new(
            EngineConfig::default(),
            7,
            tokio::time::Instant::now().into_std(),
        );
        let (rec_tx, mut rec_rx) = mpsc::channel(100_000);
        let driver = Driver::start(cfg, engine, outbound, rec_tx).await.unwrap();
        let api = driver.handle().clone();
        let records = Log::new();
        let r = records.clone();
        tokio::spawn(async move {
            while let Some(rec) = rec_rx.recv().await {
                r.push(rec);
            }
        });
        let (observer, _events) = Client::connect(ClientConfig::new(
            sim.local_addr().to_string(),
            Auth::Password("ClueCon".into()),
        ))
        .await
        .unwrap();
        api.command(Command::UpsertQueue(Box::new(QueueConfig {
            id: QUEUE,
            name: "support".into(),
            strategy: Strategy::LongestIdleAgent,
            offer_timeout: Duration::from_secs(2),
            // An agent who transfers a call wraps up, so the call goes to another.
            wrapup: Duration::from_secs(10),
            announcements: Announcements {
                first_after: None,
                every: None,
                ..Announcements::default()
            },
            recording: setup.policy,
            ..QueueConfig::default()
        })))
        .await
        .unwrap();
        World {
            sim,
            api,
            observer,
            records,
            dir,
            _driver: driver,
        }
    }

    async fn agent(&self, id: u32, ext: u32, available: bool) {
        self.api
            .command(Command::UpsertAgent(Box::new(AgentConfig {
                id: AgentId(id),
                name: format!("agent {id}"),
                contact: format!("user/{ext}"),
                ..AgentConfig::default()
            })))
            .await
            .unwrap();
        self.api
            .command(Command::SetMemberships {
                agent: AgentId(id),
                memberships: vec![Membership {
                    position: id,
                    ..Membership::new(QUEUE)
                }],
            })
            .await
            .unwrap();
        if available {
            self.api
                .command(Command::SetAgentPresence {
                    agent: AgentId(id),
                    presence: Presence::Available,
                })
                .await
                .unwrap();
        }
    }

    /// A caller who talks `talk` once bridged, then hangs up: its leg.
    async fn call(&self, talk: Duration) -> String {
        self.sim
            .place_inbound_call(InboundCall {
                destination: NUMBER.into(),
                caller_number: "+15550001".into(),
                talk_time: Some(talk),
                ..InboundCall::default()
            })
            .await
            .expect("the fake switch places the call")
    }

    /// The agent leg bridged to `caller`, once it is: FreeSWITCH sets both legs' `call_uuid`
    /// to the bridge's A leg (the caller) at CHANNEL_BRIDGE.
    async fn agent_leg_of(&self, caller: &str) -> String {
        self.agent_leg_other_than(caller, "").await
    }

    /// As [`World::agent_leg_of`], a leg other than `not`.
    async fn agent_leg_other_than(&self, caller: &str, not: &str) -> String {
        for _ in 0..500 {
            let body = self.observer.api("show channels as json").await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let rows = v["rows"].as_array().cloned().unwrap_or_default();
            let other = rows.iter().find_map(|r| {
                let uuid = r["uuid"].as_str()?;
                (uuid != caller && uuid != not && r["call_uuid"].as_str() == Some(caller))
                    .then(|| uuid.to_owned())
            });
            if let Some(o) = other {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the caller is never bridged to an agent");
    }

    async fn recording(&self, caller: &str) -> RecordingRecord {
        let leg = LegId::parse(caller).unwrap();
        match self
            .records
            .wait_for(
                "the recording's record",
                |r| matches!(r, Record::Recording(x) if x.leg == leg),
            )
            .await
        {
            Record::Recording(r) => *r,
            _ => unreachable!(),
        }
    }

    async fn act(&self, caller: &str, action: RecordingAction) {
        let leg = LegId::parse(caller).unwrap();
        let call = self
            .api
            .query(move |e| e.call_by_leg(leg))
            .await
            .unwrap()
            .expect("the call is in progress");
        self.api
            .command(Command::RecordCall {
                call,
                action,
                by: Requester {
                    name: "test supervisor".into(),
                    agent: None,
                },
            })
            .await
            .unwrap();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn always(capture: RecordingCapture) -> RecordingPolicy {
    RecordingPolicy {
        mode: RecordingMode::Always,
        capture,
        ..RecordingPolicy::default()
    }
}

const LIVE_DIAL: &str = "sofia/internal/{user}@{addr}";

// ---- reading the audio ----------------------------------------------------------------------

struct Wav {
    rate: u32,
    channels: Vec<Vec<f64>>,
}

fn read_wav(path: &Path) -> Wav {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let n = usize::from(spec.channels);
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let channels = (0..n)
        .map(|c| {
            samples
                .iter()
                .skip(c)
                .step_by(n)
                .map(|s| f64::from(*s) / 32768.0)
                .collect()
        })
        .collect();
    Wav {
        rate: spec.sample_rate,
        channels,
    }
}

/// Power of `hz` in `x` (Goertzel), normalised by length.
fn power(x: &[f64], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for v in x {
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len().max(1) as f64).powi(2)
}

/// The strongest of the candidate tones in `x`.
fn strongest(x: &[f64], rate: u32, candidates: &[u32]) -> u32 {
    candidates
        .iter()
        .copied()
        .max_by(|a, b| power(x, rate, f64::from(*a)).total_cmp(&power(x, rate, f64::from(*b))))
        .unwrap()
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Samples `from..to` seconds of a channel.
fn span(ch: &[f64], rate: u32, from: f64, to: f64) -> &[f64] {
    let a = ((from * f64::from(rate)) as usize).min(ch.len());
    let b = ((to * f64::from(rate)) as usize).min(ch.len());
    &ch[a..b]
}

// ---- the tests ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_call_is_recorded_live_in_stereo_caller_left_agent_right() {
    let w = World::start(
        "stereo",
        Setup {
            policy: always(RecordingCapture::Live),
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::Off,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    let caller = w.call(Duration::from_secs(3)).await;
    let agent = w.agent_leg_of(&caller).await;
    let caller_hz = w.sim.tone_hz(&caller).await.expect("caller tone");
    let agent_hz = w.sim.tone_hz(&agent).await.expect("agent tone");
    assert_ne!(caller_hz, agent_hz);
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    assert_eq!(rec.capture, RecordingCapture::Live);
    assert!(!rec.fell_back);
    assert_eq!(rec.agents, vec![AgentId(1)]);
    let figures = rec.figures.as_ref().expect("measured");
    assert_eq!(figures.channels, 2);
    let wav = read_wav(Path::new(&rec.path));
    assert_eq!(wav.rate, 8000);
    let (left, right) = (&wav.channels[0], &wav.channels[1]);
    let talk = span(left, wav.rate, 0.5, 2.5);
    let hear = span(right, wav.rate, 0.5, 2.5);
    let both = [caller_hz, agent_hz];
    assert_eq!(
        strongest(talk, wav.rate, &both),
        caller_hz,
        "left is the caller"
    );
    assert_eq!(
        strongest(hear, wav.rate, &both),
        agent_hz,
        "right is the agent"
    );
    // Clean directions: the other party's tone is far below in each channel.
    assert!(
        power(talk, wav.rate, f64::from(agent_hz)) * 100.0
            < power(talk, wav.rate, f64::from(caller_hz))
    );
    let secs = figures.duration_ms as f64 / 1000.0;
    assert!((2.5..4.5).contains(&secs), "about the 3 s of talk: {secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_leaves_exactly_its_span_silent_and_is_logged() {
    let w = World::start(
        "pause",
        Setup {
            policy: always(RecordingCapture::Live),
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::Off,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    let caller = w.call(Duration::from_secs(5)).await;
    w.agent_leg_of(&caller).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.act(&caller, RecordingAction::Pause).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.act(&caller, RecordingAction::Resume).await;
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    assert_eq!(rec.spans.len(), 1);
    let s = &rec.spans[0];
    assert_eq!(s.kind, SpanKind::Paused);
    assert_eq!(s.by, "test supervisor");
    let (from, to) = (s.start_ms as f64 / 1000.0, s.end_ms as f64 / 1000.0);
    assert!(
        (1.3..1.8).contains(&from) && (2.8..3.3).contains(&to),
        "{s:?}"
    );
    let wav = read_wav(Path::new(&rec.path));
    // The file starts when the recorder legs answered, a little after the engine asked:
    // the span is looked at with that much slack on each side.
    let slack = 0.25;
    for ch in &wav.channels {
        let inside = span(ch, wav.rate, from + slack, to - slack);
        assert!(
            rms(inside) < 1e-4,
            "silent while paused: rms {}",
            rms(inside)
        );
        let before = span(ch, wav.rate, 0.3, from - slack);
        let after = span(ch, wav.rate, to + slack, to + 1.0);
        assert!(
            rms(before) > 0.05 && rms(after) > 0.05,
            "audio around the pause"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_legs_that_cannot_be_reached_fall_back_to_uuid_record() {
    // A port nobody listens on: the fake switch's INVITE meets ICMP port unreachable.
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let w = World::start(
        "fallback",
        Setup {
            policy: always(RecordingCapture::Live),
            recorder_dial: Some(format!("sofia/internal/{{user}}@{closed}")),
            oreka: Oreka::Off,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    let caller = w.call(Duration::from_secs(2)).await;
    let agent = w.agent_leg_of(&caller).await;
    let caller_hz = w.sim.tone_hz(&caller).await.unwrap();
    let agent_hz = w.sim.tone_hz(&agent).await.unwrap();
    let rec = w.recording(&caller).await;
    assert!(rec.fell_back, "{rec:?}");
    assert_eq!(rec.capture, RecordingCapture::Switch);
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    let wav = read_wav(Path::new(&rec.path));
    assert_eq!(wav.channels.len(), 2);
    let both = [caller_hz, agent_hz];
    let len = wav.channels[0].len() as f64 / f64::from(wav.rate);
    assert!(len > 0.5, "{len} s of audio");
    let end = len.min(1.5);
    assert_eq!(
        strongest(span(&wav.channels[0], wav.rate, 0.1, end), wav.rate, &both),
        caller_hz
    );
    assert_eq!(
        strongest(span(&wav.channels[1], wav.rate, 0.1, end), wav.rate, &both),
        agent_hz
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_transferred_to_a_second_agent_stays_in_one_recording() {
    let w = World::start(
        "transfer",
        Setup {
            policy: always(RecordingCapture::Live),
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::Off,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    w.agent(2, 1002, true).await;
    let caller = w.call(Duration::from_secs(5)).await;
    let first = w.agent_leg_of(&caller).await;
    let first_hz = w.sim.tone_hz(&first).await.expect("the first agent's tone");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let leg = LegId::parse(&caller).unwrap();
    let call = w
        .api
        .query(move |e| e.call_by_leg(leg))
        .await
        .unwrap()
        .expect("the call is in progress");
    w.api
        .command(Command::TransferCall {
            call,
            queue: None,
            by: None,
        })
        .await
        .unwrap();
    let second = w.agent_leg_other_than(&caller, &first).await;
    let second_hz = w.sim.tone_hz(&second).await.unwrap();
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    assert_eq!(rec.agents.len(), 2, "both agents named: {:?}", rec.agents);
    let recordings = w
        .records
        .snapshot()
        .iter()
        .filter(|r| matches!(r, Record::Recording(_)))
        .count();
    assert_eq!(recordings, 1, "one recording");
    let wav = read_wav(Path::new(&rec.path));
    let right = &wav.channels[1];
    let agents = [first_hz, second_hz];
    assert_eq!(
        strongest(span(right, wav.rate, 0.3, 1.2), wav.rate, &agents),
        first_hz,
        "the first agent before the transfer"
    );
    let len = right.len() as f64 / f64::from(wav.rate);
    assert_eq!(
        strongest(
            span(right, wav.rate, len - 1.0, len - 0.2),
            wav.rate,
            &agents
        ),
        second_hz,
        "the second agent after it, in the same file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_made_on_the_agents_phone_keeps_the_caller_up_and_in_its_recording() {
    let w = World::start(
        "refer",
        Setup {
            policy: always(RecordingCapture::Live),
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::Off,
        },
    )
    .await;
    w.agent(1, REFERRING_PHONE, true).await;
    // The caller hangs up 5 s after the bridge; the agent's phone transfers it at 1.5 s.
    let caller = w.call(Duration::from_secs(5)).await;
    let agent = w.agent_leg_of(&caller).await;
    let agent_hz = w.sim.tone_hz(&agent).await.expect("the agent's tone");
    let leg = LegId::parse(&caller).unwrap();
    let ended = w
        .records
        .wait_for(
            "the call's record",
            |r| matches!(r, Record::Call(c) if c.leg == leg),
        )
        .await;
    let Record::Call(call) = ended else {
        unreachable!()
    };
    assert_eq!(call.outcome, CallOutcome::Transferred);
    assert_eq!(call.agent, Some(AgentId(1)));
    assert!(
        call.talk_s >= 1.3 && call.talk_s < 3.0,
        "talk ends at the transfer: {}",
        call.talk_s
    );
    // The transferred caller is FreeSWITCH's now: up and parked where the REFER sent it,
    // never hung up by switchyard; the phone that transferred is gone.
    let exists = |uuid: String| {
        let observer = &w.observer;
        async move {
            let body = observer.api(&format!("uuid_exists {uuid}")).await.unwrap();
            String::from_utf8_lossy(&body).trim().to_owned()
        }
    };
    assert_eq!(exists(caller.clone()).await, "true", "the caller lives on");
    let phone_gone = async {
        for _ in 0..100 {
            if exists(agent.clone()).await == "false" {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    };
    assert!(phone_gone.await, "the transferring phone's leg hangs up");
    let destination = w
        .observer
        .api(&format!("uuid_getvar {caller} sip_refer_to"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&destination).contains("2000"));
    // The recording taps the caller's leg: it goes on past the transfer, until the caller
    // hangs up, and is one file.
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    let wav = read_wav(Path::new(&rec.path));
    let len = wav.channels[1].len() as f64 / f64::from(wav.rate);
    assert!(
        len > 4.0,
        "recorded until the caller left, not the transfer: {len}"
    );
    let right = &wav.channels[1];
    let candidates = [agent_hz, 400, 480];
    assert_eq!(
        strongest(span(right, wav.rate, 0.3, 1.2), wav.rate, &candidates),
        agent_hz,
        "the agent before the transfer"
    );
    let after = rms(span(right, wav.rate, len - 1.5, len - 0.3));
    let before = rms(span(right, wav.rate, 0.3, 1.2));
    assert!(
        after < before / 10.0,
        "no agent after the transfer: rms {after} against {before}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oreka_policy_forks_the_caller_with_mod_oreka_into_a_stereo_recording() {
    let w = World::start(
        "oreka",
        Setup {
            policy: always(RecordingCapture::Oreka),
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::ToEndpoint,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    let caller = w.call(Duration::from_secs(3)).await;
    let agent = w.agent_leg_of(&caller).await;
    let caller_hz = w.sim.tone_hz(&caller).await.expect("caller tone");
    let agent_hz = w.sim.tone_hz(&agent).await.expect("agent tone");
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    assert_eq!(rec.capture, RecordingCapture::Oreka);
    assert!(!rec.fell_back);
    let wav = read_wav(Path::new(&rec.path));
    assert_eq!((wav.rate, wav.channels.len()), (8000, 2));
    let talk = span(&wav.channels[0], wav.rate, 0.5, 2.5);
    let hear = span(&wav.channels[1], wav.rate, 0.5, 2.5);
    let both = [caller_hz, agent_hz];
    assert_eq!(
        strongest(talk, wav.rate, &both),
        caller_hz,
        "RX is the caller, left"
    );
    assert_eq!(
        strongest(hear, wav.rate, &both),
        agent_hz,
        "TX is the agent, right"
    );
    assert!(
        power(talk, wav.rate, f64::from(agent_hz)) * 100.0
            < power(talk, wav.rate, f64::from(caller_hz))
    );
    let secs = rec.figures.as_ref().expect("measured").duration_ms as f64 / 1000.0;
    assert!((2.5..4.5).contains(&secs), "about the 3 s of talk: {secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_whose_invite_never_comes_falls_back_to_uuid_record() {
    let w = World::start(
        "oreka-elsewhere",
        Setup {
            policy: always(RecordingCapture::Oreka),
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::Elsewhere,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    let caller = w.call(Duration::from_secs(3)).await;
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    assert_eq!(rec.capture, RecordingCapture::Switch);
    assert!(rec.fell_back);
    let wav = read_wav(Path::new(&rec.path));
    assert_eq!(wav.channels.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_announcement_plays_first_and_the_recording_begins_after_it() {
    // The fake switch plays a file of unknown length for 2 s (its `default_playback`).
    let w = World::start(
        "announced",
        Setup {
            policy: RecordingPolicy {
                announcement: Some("ivr/ivr-this_call_may_be_recorded.wav".into()),
                ..always(RecordingCapture::Live)
            },
            recorder_dial: Some(LIVE_DIAL.into()),
            oreka: Oreka::Off,
        },
    )
    .await;
    w.agent(1, 1001, true).await;
    let caller = w.call(Duration::from_secs(5)).await;
    let agent = w.agent_leg_of(&caller).await;
    let caller_hz = w.sim.tone_hz(&caller).await.expect("caller tone");
    let agent_hz = w.sim.tone_hz(&agent).await.expect("agent tone");
    let rec = w.recording(&caller).await;
    assert_eq!(rec.status, RecordingStatus::Completed, "{:?}", rec.error);
    let secs = rec.figures.as_ref().expect("measured").duration_ms as f64 / 1000.0;
    assert!(
        (2.0..4.0).contains(&secs),
        "5 s of talk less the 2 s announcement: {secs}"
    );
    let wav = read_wav(Path::new(&rec.path));
    let both = [caller_hz, agent_hz];
    let talk = span(&wav.channels[0], wav.rate, 0.5, 2.0);
    assert_eq!(strongest(talk, wav.rate, &both), caller_hz);
}
