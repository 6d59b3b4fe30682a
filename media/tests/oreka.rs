//! mod_oreka's forks into the recorder endpoint over loopback: the INVITEs and BYEs exactly as
//! mod_oreka.c (FreeSWITCH 1.10.12) prints them, and RTP sent the way it sends it: from
//! FreeSWITCH's address (here 127.0.0.2) at port P to the recorder's address at the same port
//! P, whatever the endpoint answered.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{Sender, dominant, goertzel, tone};
use switchyard_media::net::{RecorderCommand, RecorderConfig, RecorderReport, UdpRecorder};
use switchyard_media::sip::{
    EndReason, LegEvent, SipCommand, SipEndpoint, SipStats, UasConfig, oreka_wire,
};
use switchyard_media::{CaptureConfig, Leg};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const UUID: &str = "0d9d1c54-3f2a-4b7e-9a51-6c3e2f7a1b20";
/// FreeSWITCH's address in these tests: loopback, but not the recorder's, so that both can
/// bind the same port number as they do on two hosts.
const SWITCH_IP: &str = "127.0.0.2";

struct Bed {
    recorder: mpsc::Sender<RecorderCommand<u32>>,
    sip: mpsc::Sender<SipCommand<u32>>,
    events: mpsc::Receiver<LegEvent<u32>>,
    sip_addr: SocketAddr,
    dir: PathBuf,
    recorder_task: JoinHandle<RecorderReport<u32>>,
    sip_task: JoinHandle<SipStats>,
}

impl Bed {
    async fn new(name: &str) -> Bed {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-media-oreka-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let recorder = UdpRecorder::<u32>::bind(RecorderConfig::default())
            .await
            .unwrap();
        let rtp_addr = recorder.local_addr().unwrap();
        let (recorder_commands, inbox) = mpsc::channel(16);
        let recorder_task = tokio::spawn(recorder.run(inbox));
        let (event_sender, events) = mpsc::channel(16);
        let endpoint = SipEndpoint::bind(
            UasConfig {
                sip_addr: "127.0.0.1:0".parse().unwrap(),
                rtp_addr,
                ..UasConfig::default()
            },
            recorder_commands.clone(),
            event_sender,
        )
        .await
        .unwrap();
        let sip_addr = endpoint.local_addr().unwrap();
        let (sip, inbox) = mpsc::channel(16);
        let sip_task = tokio::spawn(endpoint.run(inbox));
        Bed {
            recorder: recorder_commands,
            sip,
            events,
            sip_addr,
            dir,
            recorder_task,
            sip_task,
        }
    }

    /// Starts recording `key` and announces the fork of channel `uuid` into it.
    async fn record_fork(&self, key: u32, uuid: &str) -> PathBuf {
        let path = self.dir.join(format!("{key}.wav"));
        let (reply, answer) = oneshot::channel();
        self.recorder
            .send(RecorderCommand::Start {
                key,
                capture: CaptureConfig::default(),
                path: path.clone(),
                flows: Vec::new(),
                reply,
            })
            .await
            .unwrap();
        answer.await.unwrap().unwrap();
        let (reply, answer) = oneshot::channel();
        self.sip
            .send(SipCommand::ExpectFork {
                call_id: uuid.to_owned(),
                key,
                reply,
            })
            .await
            .unwrap();
        answer.await.unwrap().unwrap();
        path
    }

    async fn event(&mut self) -> LegEvent<u32> {
        timeout(Duration::from_secs(2), self.events.recv())
            .await
            .expect("an event within 2 s")
            .expect("endpoint running")
    }

    async fn finish(self) -> (SipStats, RecorderReport<u32>) {
        drop(self.sip);
        let stats = self.sip_task.await.unwrap();
        drop(self.recorder);
        let report = self.recorder_task.await.unwrap();
        std::fs::remove_dir_all(&self.dir).unwrap();
        (stats, report)
    }
}

/// mod_oreka's SIP socket: unbound (an ephemeral port), never read by mod_oreka; the test
/// reads it to see what the endpoint answered.
struct Oreka {
    sip: UdpSocket,
    endpoint: SocketAddr,
}

impl Oreka {
    async fn send(&self, begin: bool, rx: bool, uuid: &str, port: u16) {
        let datagram = oreka_wire::datagram(
            begin,
            rx,
            uuid,
            "1000",
            "Alice Caller",
            "Support Line",
            SWITCH_IP,
            "127.0.0.1",
            port,
            &[("X-Switchyard-Call", "c-1")],
        );
        self.sip.send_to(&datagram, self.endpoint).await.unwrap();
    }

    async fn response(&self) -> String {
        let mut buffer = vec![0u8; 4096];
        let (len, _) = timeout(Duration::from_secs(2), self.sip.recv_from(&mut buffer))
            .await
            .expect("a response")
            .unwrap();
        String::from_utf8(buffer[..len].to_vec()).unwrap()
    }
}

fn status(response: &str) -> u16 {
    response[8..11].parse().unwrap()
}

fn channels(path: &PathBuf) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    (
        samples.iter().step_by(2).copied().collect(),
        samples.iter().skip(1).step_by(2).copied().collect(),
    )
}

#[tokio::test]
async fn an_oreka_fork_is_recorded_in_stereo_from_the_ports_it_chose_and_ends_on_its_byes() {
    let mut bed = Bed::new("stereo").await;
    let path = bed.record_fork(7, UUID).await;
    let oreka = Oreka {
        sip: UdpSocket::bind((SWITCH_IP, 0)).await.unwrap(),
        endpoint: bed.sip_addr,
    };
    // FreeSWITCH's two RTP sockets, each on a port of its choosing.
    let rx = UdpSocket::bind((SWITCH_IP, 0)).await.unwrap();
    let tx = UdpSocket::bind((SWITCH_IP, 0)).await.unwrap();
    let (rx_port, tx_port) = (
        rx.local_addr().unwrap().port(),
        tx.local_addr().unwrap().port(),
    );

    // Both INVITEs at once, as the media bug's INIT sends them: the same Call-ID, branch and
    // CSeq, told apart by their Subject and SDP only.
    oreka.send(true, true, UUID, rx_port).await;
    oreka.send(true, false, UUID, tx_port).await;
    for _ in 0..2 {
        let ok = oreka.response().await;
        assert_eq!(status(&ok), 200, "{ok}");
        assert!(ok.contains("Content-Type: application/sdp"), "{ok}");
    }
    for expected in [Leg::Caller, Leg::Agent] {
        match bed.event().await {
            LegEvent::Answered {
                key: 7,
                leg,
                call_id,
                rtp_from,
                ..
            } => {
                assert_eq!((leg, call_id.as_str()), (expected, UUID));
                assert_eq!(rtp_from.ip().to_string(), SWITCH_IP);
            }
            other => panic!("{other:?}"),
        }
    }
    // A fork of a channel nobody announced: refused, and nothing listens for it.
    let stranger = "11111111-2222-4333-8444-555555555555";
    oreka.send(true, true, stranger, 40_000).await;
    assert_eq!(status(&oreka.response().await), 404);

    // One second of each direction, 20 ms packets: the caller says 440 Hz, hears 1000 Hz.
    let caller = tone(440.0, 8000.0, 0.0, 8000);
    let agent = tone(1000.0, 8000.0, 0.0, 8000);
    let (mut rx_sender, mut tx_sender) = (Sender::new(0x1111, 100, 0), Sender::new(0x2222, 7, 0));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..50 {
        tick.tick().await;
        let span = i * 160..(i + 1) * 160;
        rx.send_to(
            &rx_sender.audio(&caller[span.clone()]),
            ("127.0.0.1", rx_port),
        )
        .await
        .unwrap();
        tx.send_to(&tx_sender.audio(&agent[span]), ("127.0.0.1", tx_port))
            .await
            .unwrap();
    }
    // A packet from anywhere else to a fork's port is not audio of this call.
    let intruder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    intruder
        .send_to(
            &Sender::new(9, 0, 0).audio(&[0; 160]),
            ("127.0.0.1", rx_port),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;

    // The media bug's CLOSE: one BYE per direction, again sharing every key but the Subject.
    oreka.send(false, true, UUID, 0).await;
    oreka.send(false, false, UUID, 0).await;
    for _ in 0..2 {
        assert_eq!(status(&oreka.response().await), 200);
    }
    for expected in [Leg::Caller, Leg::Agent] {
        match bed.event().await {
            LegEvent::Ended {
                key: 7,
                leg,
                reason: EndReason::Bye,
                ..
            } => assert_eq!(leg, expected),
            other => panic!("{other:?}"),
        }
    }
    let summary = match bed.event().await {
        LegEvent::Finished { key: 7, result } => result.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(summary.stats.caller.packets, 50);
    assert_eq!(summary.stats.agent.packets, 50);
    let (left, right) = channels(&path);
    let first = left.iter().position(|&s| s != 0).unwrap();
    let middle = first + 1000..first + 7000;
    assert_eq!(dominant(&left[middle.clone()], &[440.0, 1000.0]), 440.0);
    assert_eq!(dominant(&right[middle.clone()], &[440.0, 1000.0]), 1000.0);
    assert!(goertzel(&left[middle.clone()], 1000.0).0 < 50.0);
    assert!(goertzel(&right[middle], 440.0).0 < 50.0);

    // The ports are closed with the fork: RTP sent there now goes nowhere.
    rx.send_to(&rx_sender.audio(&caller[..160]), ("127.0.0.1", rx_port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (stats, report) = bed.finish().await;
    assert_eq!((stats.answered, stats.refused, stats.malformed), (2, 1, 0));
    assert_eq!(report.stray, 1, "the intruder's packet, and nothing else");
}

#[tokio::test]
async fn a_muxed_fork_sends_rx_only_and_its_one_bye_finishes_the_recording() {
    // `oreka_mux_streams=true`: one INVITE (RX) carrying both directions mixed, one BYE.
    let mut bed = Bed::new("mux").await;
    bed.record_fork(8, UUID).await;
    let oreka = Oreka {
        sip: UdpSocket::bind((SWITCH_IP, 0)).await.unwrap(),
        endpoint: bed.sip_addr,
    };
    let rx = UdpSocket::bind((SWITCH_IP, 0)).await.unwrap();
    let port = rx.local_addr().unwrap().port();
    oreka.send(true, true, UUID, port).await;
    assert_eq!(status(&oreka.response().await), 200);
    assert!(matches!(
        bed.event().await,
        LegEvent::Answered {
            leg: Leg::Caller,
            ..
        }
    ));
    let mut sender = Sender::new(5, 0, 0);
    for _ in 0..10 {
        rx.send_to(
            &sender.audio(&tone(440.0, 8000.0, 0.0, 160)),
            ("127.0.0.1", port),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    oreka.send(false, true, UUID, 0).await;
    assert_eq!(status(&oreka.response().await), 200);
    assert!(matches!(bed.event().await, LegEvent::Ended { .. }));
    match bed.event().await {
        LegEvent::Finished { key: 8, result } => {
            assert_eq!(result.unwrap().stats.caller.packets, 10)
        }
        other => panic!("{other:?}"),
    }
    // The port is the recorder's to bind again: the next fork on it works.
    let (stats, _) = bed.finish().await;
    assert_eq!(stats.answered, 1);
}

#[tokio::test]
async fn a_fork_whose_port_cannot_be_bound_is_answered_503_and_ends_its_leg() {
    let mut bed = Bed::new("busy").await;
    bed.record_fork(9, UUID).await;
    let oreka = Oreka {
        sip: UdpSocket::bind((SWITCH_IP, 0)).await.unwrap(),
        endpoint: bed.sip_addr,
    };
    // Something else on the recorder's host holds the port mod_oreka picked.
    let squatter = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = squatter.local_addr().unwrap().port();
    oreka.send(true, true, UUID, port).await;
    assert_eq!(status(&oreka.response().await), 503);
    match bed.event().await {
        LegEvent::Ended {
            key: 9,
            leg: Leg::Caller,
            reason: EndReason::RouteFailed(_),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    // Only RX ever began and it ended: the recording is finished, not left waiting for TX.
    assert!(matches!(
        bed.event().await,
        LegEvent::Finished { key: 9, .. }
    ));
    bed.finish().await;
}
