//! The recorder endpoint over loopback UDP, played against by a test UAC that replays the SIP
//! FreeSWITCH 1.10 really sent to two `&eavesdrop` recorder legs
//! (`../shared/esl-captures/eavesdrop-recorder-leg.udp.bin`), rewritten to this test's
//! ports and tags, and the RTP of that capture.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{Frame, dominant, goertzel, recorder_leg_frames as frames};
use switchyard_media::net::{RecorderCommand, RecorderConfig, RecorderReport, UdpRecorder};
use switchyard_media::sip::{EndReason, LegEvent, SipCommand, SipEndpoint, SipStats, UasConfig};
use switchyard_media::{CaptureConfig, Leg, MediaError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

// ---- the capture -------------------------------------------------------------------------

/// The SIP requests FreeSWITCH sent, in order: INVITE a, INVITE b, ACK a, ACK b, BYE a, BYE b.
fn freeswitch_requests() -> Vec<String> {
    frames()
        .into_iter()
        .filter(|f| f.flow == "sip" && f.dir == "FS>UAS")
        .map(|f| String::from_utf8(f.body).unwrap())
        .collect()
}

/// Replaces `from` by `to` everywhere and sets Content-Length to the body's new length.
fn rewrite(message: &str, replacements: &[(&str, &str)]) -> String {
    let mut message = message.to_owned();
    for (from, to) in replacements {
        message = message.replace(from, to);
    }
    let (head, body) = message.split_once("\r\n\r\n").expect("head and body");
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| {
            if line.starts_with("Content-Length:") {
                format!("Content-Length: {}", body.len())
            } else {
                line.to_owned()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n"))
}

/// FreeSWITCH's INVITE to `rec-a`, for `user`, with its own Call-ID and branch, offering RTP
/// from `rtp_port`.
fn invite(user: &str, call_id: &str, branch: &str, rtp_port: u16) -> String {
    let original = &freeswitch_requests()[0];
    rewrite(
        original,
        &[
            ("rec-a", user),
            ("8d0ef837-6bd5-1240-6b9c-26383e505b59", call_id),
            ("z9hG4bKa334Qjryvyyrr", branch),
            ("m=audio 30586", &format!("m=audio {rtp_port}")),
        ],
    )
}

// ---- the test UAC ------------------------------------------------------------------------

fn status(response: &str) -> u16 {
    response
        .strip_prefix("SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response}"))
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .split("\r\n")
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

fn to_tag(response: &str) -> String {
    let to = header(response, "To").expect("To");
    to.split(";tag=").nth(1).expect("a To tag").to_owned()
}

fn body(message: &str) -> &str {
    message.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[derive(Debug)]
struct Uac {
    socket: UdpSocket,
    endpoint: SocketAddr,
}

impl Uac {
    async fn new(endpoint: SocketAddr) -> Self {
        Uac {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            endpoint,
        }
    }

    async fn send(&self, message: &[u8]) {
        self.socket.send_to(message, self.endpoint).await.unwrap();
    }

    async fn recv(&self) -> String {
        let mut buffer = vec![0u8; 65_536];
        let (len, from) = timeout(Duration::from_secs(2), self.socket.recv_from(&mut buffer))
            .await
            .expect("a response within 2 s")
            .unwrap();
        assert_eq!(from, self.endpoint, "responses come from the SIP socket");
        String::from_utf8(buffer[..len].to_vec()).expect("utf-8 response")
    }

    /// Nothing arrives within `wait`.
    async fn silent(&self, wait: Duration) -> bool {
        let mut buffer = vec![0u8; 65_536];
        timeout(wait, self.socket.recv_from(&mut buffer))
            .await
            .is_err()
    }

    /// Sends an INVITE and reads its 100 Trying and final response.
    async fn invite(&self, invite: &str) -> String {
        self.send(invite.as_bytes()).await;
        let trying = self.recv().await;
        assert_eq!(status(&trying), 100, "{trying}");
        self.recv().await
    }
}

// ---- the bed: recorder + endpoint ----------------------------------------------------------

struct Bed {
    recorder: mpsc::Sender<RecorderCommand<u32>>,
    sip: mpsc::Sender<SipCommand<u32>>,
    events: mpsc::Receiver<LegEvent<u32>>,
    sip_addr: SocketAddr,
    rtp_addr: SocketAddr,
    dir: PathBuf,
    recorder_task: JoinHandle<RecorderReport<u32>>,
    sip_task: JoinHandle<SipStats>,
}

impl Bed {
    async fn new(name: &str, uas: UasConfig) -> Bed {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-media-sip-{name}-{}",
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
                ..uas
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
            rtp_addr,
            dir,
            recorder_task,
            sip_task,
        }
    }

    /// Starts recording `key` (with no flows: the endpoint routes them) and expects its legs.
    async fn record(&self, key: u32, legs: &[(&str, Leg)]) -> PathBuf {
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
        for &(user, leg) in legs {
            let (reply, answer) = oneshot::channel();
            self.sip
                .send(SipCommand::Expect {
                    user: user.to_owned(),
                    key,
                    leg,
                    reply,
                })
                .await
                .unwrap();
            answer.await.unwrap().unwrap();
        }
        path
    }

    async fn stats(&self) -> SipStats {
        let (reply, answer) = oneshot::channel();
        self.sip.send(SipCommand::Stats { reply }).await.unwrap();
        answer.await.unwrap()
    }

    async fn event(&mut self) -> LegEvent<u32> {
        timeout(Duration::from_secs(2), self.events.recv())
            .await
            .expect("an event within 2 s")
            .expect("endpoint running")
    }

    async fn no_event(&mut self) -> bool {
        timeout(Duration::from_millis(100), self.events.recv())
            .await
            .is_err()
    }

    /// Stops both tasks and answers what they counted.
    async fn finish(self) -> (SipStats, RecorderReport<u32>) {
        drop(self.sip);
        let stats = self.sip_task.await.unwrap();
        drop(self.recorder);
        let report = self.recorder_task.await.unwrap();
        std::fs::remove_dir_all(&self.dir).unwrap();
        (stats, report)
    }
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

// ---- the tests -----------------------------------------------------------------------------

#[tokio::test]
async fn freeswitch_ladder_and_rtp_replayed_record_caller_440_left_and_agent_1000_right() {
    let mut bed = Bed::new("ladder", UasConfig::default()).await;
    let path = bed
        .record(1, &[("rec-a", Leg::Caller), ("rec-b", Leg::Agent)])
        .await;
    let uac = Uac::new(bed.sip_addr).await;
    let rtp_a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (port_a, port_b) = (
        rtp_a.local_addr().unwrap().port(),
        rtp_b.local_addr().unwrap().port(),
    );
    let requests = freeswitch_requests();
    assert_eq!(requests.len(), 6);
    let invite_a = rewrite(
        &requests[0],
        &[("m=audio 30586", &format!("m=audio {port_a}"))],
    );
    let invite_b = rewrite(
        &requests[1],
        &[("m=audio 20710", &format!("m=audio {port_b}"))],
    );

    let ok_a = uac.invite(&invite_a).await;
    assert_eq!(status(&ok_a), 200, "{ok_a}");
    let ok_b = uac.invite(&invite_b).await;
    assert_eq!(status(&ok_b), 200, "{ok_b}");
    for ok in [&ok_a, &ok_b] {
        assert_eq!(header(ok, "Content-Type"), Some("application/sdp"));
        let sdp = body(ok);
        assert!(
            sdp.contains(&format!(
                "m=audio {} RTP/AVP 0 101\r\n",
                bed.rtp_addr.port()
            )),
            "{sdp}"
        );
        assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"), "{sdp}");
        assert!(
            sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=recvonly\r\n"), "{sdp}");
        assert_eq!(header(ok, "CSeq"), Some("123712984 INVITE"));
        assert!(header(ok, "Via").unwrap().contains("rport="), "{ok}");
    }
    let (tag_a, tag_b) = (to_tag(&ok_a), to_tag(&ok_b));
    assert_ne!(tag_a, tag_b);
    uac.send(requests[2].replace("8bcdb054", &tag_a).as_bytes())
        .await;
    uac.send(requests[3].replace("4ba97324", &tag_b).as_bytes())
        .await;
    for (user, leg) in [("rec-a", Leg::Caller), ("rec-b", Leg::Agent)] {
        match bed.event().await {
            LegEvent::Answered {
                key: 1,
                leg: answered,
                rtp_from,
                ..
            } => {
                assert_eq!(answered, leg, "{user}");
                let port = if leg == Leg::Caller { port_a } else { port_b };
                assert_eq!(rtp_from.port(), port);
            }
            other => panic!("{other:?}"),
        }
    }

    // The capture's RTP, at its own pace.
    let rtp: Vec<Frame> = frames()
        .into_iter()
        .filter(|f| f.flow.starts_with("rtp-"))
        .collect();
    assert_eq!(rtp.len(), 100);
    let (t0, start) = (rtp[0].t, Instant::now());
    for frame in &rtp {
        tokio::time::sleep_until(start + Duration::from_secs_f64(frame.t - t0)).await;
        let socket = if frame.flow == "rtp-rec-a" {
            &rtp_a
        } else {
            &rtp_b
        };
        socket.send_to(&frame.body, bed.rtp_addr).await.unwrap();
    }
    // Let the last packets through the reorder window.
    tokio::time::sleep(Duration::from_millis(200)).await;

    for (bye, old_tag, tag) in [
        (&requests[4], "8bcdb054", &tag_a),
        (&requests[5], "4ba97324", &tag_b),
    ] {
        uac.send(bye.replace(old_tag, tag).as_bytes()).await;
        let ok = uac.recv().await;
        assert_eq!(status(&ok), 200, "{ok}");
        assert_eq!(header(&ok, "CSeq"), Some("123712985 BYE"));
    }
    for leg in [Leg::Caller, Leg::Agent] {
        match bed.event().await {
            LegEvent::Ended {
                key: 1,
                leg: ended,
                reason: EndReason::Bye,
                ..
            } => assert_eq!(ended, leg),
            other => panic!("{other:?}"),
        }
    }
    let summary = match bed.event().await {
        LegEvent::Finished { key: 1, result } => result.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(summary.stats.caller.packets, 50);
    assert_eq!(summary.stats.agent.packets, 50);
    let total = summary.stats.total();
    assert_eq!((total.lost, total.late, total.malformed), (0, 0, 0));

    let (left, right) = channels(&path);
    let first = left.iter().position(|&s| s != 0).unwrap();
    let middle = first + 1000..first + 7000;
    assert_eq!(dominant(&left[middle.clone()], &[440.0, 1000.0]), 440.0);
    assert_eq!(dominant(&right[middle.clone()], &[440.0, 1000.0]), 1000.0);
    assert!(goertzel(&left[middle.clone()], 1000.0).0 < 50.0);
    assert!(goertzel(&right[middle], 440.0).0 < 50.0);

    let (stats, report) = bed.finish().await;
    assert_eq!(
        (
            stats.answered,
            stats.refused,
            stats.malformed,
            stats.retransmissions
        ),
        (2, 0, 0, 0)
    );
    assert_eq!(report.stray, 0);
    assert!(report.recordings.is_empty(), "the endpoint stopped it");
}

#[tokio::test]
async fn an_unexpected_invite_is_refused_404_and_its_rtp_goes_nowhere() {
    let mut bed = Bed::new("unexpected", UasConfig::default()).await;
    bed.record(2, &[("rec-expected-a", Leg::Caller)]).await;
    let uac = Uac::new(bed.sip_addr).await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = invite(
        "rec-nobody-a",
        "call-unexpected",
        "z9hG4bKu1",
        rtp.local_addr().unwrap().port(),
    );
    uac.send(stranger.as_bytes()).await;
    let refusal = uac.recv().await;
    assert_eq!(status(&refusal), 404, "{refusal}");
    assert_eq!(header(&refusal, "Content-Length"), Some("0"));
    assert!(header(&refusal, "To").unwrap().contains(";tag="));
    // The stray INVITE's would-be RTP is counted as stray by the recorder.
    rtp.send_to(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], bed.rtp_addr)
        .await
        .unwrap();
    // A user with no tag at all, and a second try of the same: refused the same way.
    uac.send(invite("", "call-no-user", "z9hG4bKu2", 4000).as_bytes())
        .await;
    assert_eq!(status(&uac.recv().await), 404);
    assert!(bed.no_event().await, "a refusal is no leg event");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (stats, report) = bed.finish().await;
    assert_eq!((stats.refused, stats.answered), (2, 0));
    assert_eq!(report.stray, 1);
}

#[tokio::test]
async fn options_is_answered_200_with_allow() {
    let bed = Bed::new("options", UasConfig::default()).await;
    let uac = Uac::new(bed.sip_addr).await;
    let options = "OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo1\r\nFrom: <sip:mod_sofia@127.0.0.1>;tag=x\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: ping-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    uac.send(options.as_bytes()).await;
    let ok = uac.recv().await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(
        header(&ok, "Allow"),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS")
    );
    assert_eq!(header(&ok, "Call-ID"), Some("ping-1"));
    assert_eq!(header(&ok, "CSeq"), Some("1 OPTIONS"));
    let info = options
        .replace("OPTIONS", "MESSAGE")
        .replace("z9hG4bKo1", "z9hG4bKo2");
    uac.send(info.as_bytes()).await;
    assert_eq!(status(&uac.recv().await), 405);
    bed.finish().await;
}

#[tokio::test]
async fn a_retransmitted_invite_or_bye_gets_the_same_response_and_an_unacked_200_is_resent() {
    let uas = UasConfig {
        t1: Duration::from_millis(100),
        ..UasConfig::default()
    };
    let mut bed = Bed::new("retransmit", uas).await;
    bed.record(3, &[("rec-r-a", Leg::Caller)]).await;
    let uac = Uac::new(bed.sip_addr).await;
    let invite = invite("rec-r-a", "call-retransmit", "z9hG4bKr1", 40_000);
    let ok = uac.invite(&invite).await;
    assert_eq!(status(&ok), 200);
    // The same INVITE again (our 200 "lost"): the very same 200, no second dialog.
    uac.send(invite.as_bytes()).await;
    assert_eq!(uac.recv().await, ok);
    // No ACK yet: the endpoint resends the 200 by itself after T1.
    assert_eq!(uac.recv().await, ok);
    let tag = to_tag(&ok);
    let ack = freeswitch_requests()[2]
        .replace("8bcdb054", &tag)
        .replace("8d0ef837-6bd5-1240-6b9c-26383e505b59", "call-retransmit")
        .replace("rec-a", "rec-r-a");
    uac.send(ack.as_bytes()).await;
    // Drain anything sent before the ACK arrived, then nothing more.
    while !uac.silent(Duration::from_millis(400)).await {}

    let bye = freeswitch_requests()[4]
        .replace("8bcdb054", &tag)
        .replace("8d0ef837-6bd5-1240-6b9c-26383e505b59", "call-retransmit")
        .replace("rec-a", "rec-r-a");
    uac.send(bye.as_bytes()).await;
    let bye_ok = uac.recv().await;
    assert_eq!(status(&bye_ok), 200);
    uac.send(bye.as_bytes()).await;
    assert_eq!(
        uac.recv().await,
        bye_ok,
        "a repeated BYE gets the same 200, not 481"
    );

    assert!(matches!(
        bed.event().await,
        LegEvent::Answered { key: 3, .. }
    ));
    assert!(matches!(
        bed.event().await,
        LegEvent::Ended {
            key: 3,
            reason: EndReason::Bye,
            ..
        }
    ));
    assert!(matches!(
        bed.event().await,
        LegEvent::Finished {
            key: 3,
            result: Ok(_)
        }
    ));
    let stats = bed.stats().await;
    assert_eq!((stats.answered, stats.retransmissions), (1, 2));
    bed.finish().await;
}

#[tokio::test]
async fn malformed_and_oversized_datagrams_are_counted_dropped_and_the_endpoint_keeps_answering() {
    let bed = Bed::new("malformed", UasConfig::default()).await;
    let uac = Uac::new(bed.sip_addr).await;
    let real = invite("rec-m-a", "call-malformed", "z9hG4bKm1", 40_002);
    let (head, _) = real.split_once("\r\n\r\n").unwrap();
    let malformed: Vec<Vec<u8>> = vec![
        b"not for you \x00\xff".to_vec(),
        b"INVITE sip:rec@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(),
        real.as_bytes()[..300].to_vec(),
        // A complete head whose body is cut short of its Content-Length.
        format!("{head}\r\n\r\nv=0\r\n").into_bytes(),
        real.replace("CSeq: 123712984 INVITE", "CSeq: many INVITE")
            .into_bytes(),
    ];
    for datagram in &malformed {
        uac.send(datagram).await;
    }
    uac.send(&vec![b'A'; 9000]).await;
    uac.send(b"\r\n\r\n").await;
    uac.send(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKq\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert!(
        uac.silent(Duration::from_millis(200)).await,
        "none is answered"
    );
    let options = "OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo9\r\nFrom: <sip:a@b>;tag=x\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: ping-9\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    uac.send(options.as_bytes()).await;
    assert_eq!(status(&uac.recv().await), 200);
    let stats = bed.stats().await;
    assert_eq!(
        (
            stats.malformed,
            stats.oversize,
            stats.ignored,
            stats.datagrams
        ),
        (5, 1, 2, 9)
    );
    bed.finish().await;
}

#[tokio::test]
async fn a_reinvite_that_moves_the_rtp_source_reroutes_the_leg_and_answers_a_new_sdp_version() {
    let mut bed = Bed::new("reinvite", UasConfig::default()).await;
    let path = bed.record(4, &[("rec-h-a", Leg::Caller)]).await;
    let uac = Uac::new(bed.sip_addr).await;
    let old = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let new = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = invite(
        "rec-h-a",
        "call-reinvite",
        "z9hG4bKh1",
        old.local_addr().unwrap().port(),
    );
    let ok = uac.invite(&first).await;
    let tag = to_tag(&ok);
    assert!(body(&ok).contains(" 1 IN IP4 "), "{ok}");
    let ack = |cseq: u32| {
        freeswitch_requests()[2]
            .replace("8bcdb054", &tag)
            .replace("8d0ef837-6bd5-1240-6b9c-26383e505b59", "call-reinvite")
            .replace("rec-a", "rec-h-a")
            .replace("123712984", &cseq.to_string())
    };
    uac.send(ack(123_712_984).as_bytes()).await;

    // A re-INVITE: in the dialog (our tag), a new CSeq and branch, RTP from another port
    // and PCMA first.
    let second = rewrite(
        &invite(
            "rec-h-a",
            "call-reinvite",
            "z9hG4bKh2",
            new.local_addr().unwrap().port(),
        ),
        &[
            (
                "To: <sip:rec-h-a@127.0.0.1:5090>",
                &format!("To: <sip:rec-h-a@127.0.0.1:5090>;tag={tag}"),
            ),
            ("CSeq: 123712984", "CSeq: 123712986"),
            ("RTP/AVP 0 101", "RTP/AVP 8 0 101"),
        ],
    );
    let ok2 = uac.invite(&second).await;
    assert_eq!(status(&ok2), 200, "{ok2}");
    assert_eq!(to_tag(&ok2), tag);
    assert!(
        body(&ok2).contains(" 2 IN IP4 "),
        "the answer's version goes up: {ok2}"
    );
    assert!(body(&ok2).contains("RTP/AVP 8 101\r\n"), "{ok2}");
    uac.send(ack(123_712_986).as_bytes()).await;
    assert!(matches!(
        bed.event().await,
        LegEvent::Answered { key: 4, .. }
    ));
    match bed.event().await {
        LegEvent::Updated {
            key: 4,
            rtp_from,
            format,
            on_hold: false,
            ..
        } => {
            assert_eq!(rtp_from, new.local_addr().unwrap());
            assert_eq!(format, switchyard_media::PayloadFormat::Pcma);
        }
        other => panic!("{other:?}"),
    }

    // The new source is recorded (PCMA now); the old one is stray.
    let mut sender = common::Sender::new(0xBEEF, 1, 160);
    sender.payload_type = 8;
    let tone = common::tone(440.0, 8000.0, 0.0, 4000);
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for chunk in tone.chunks(160) {
        pace.tick().await;
        let payload: Vec<u8> = chunk
            .iter()
            .map(|&s| switchyard_media::g711::linear_to_alaw(s))
            .collect();
        let mut datagram = Vec::new();
        switchyard_media::rtp::write_packet(
            &mut datagram,
            8,
            false,
            sender.seq,
            sender.ts,
            sender.ssrc,
            &payload,
        );
        sender.seq += 1;
        sender.ts += 160;
        new.send_to(&datagram, bed.rtp_addr).await.unwrap();
    }
    old.send_to(b"late from the old port", bed.rtp_addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bye = freeswitch_requests()[4]
        .replace("8bcdb054", &tag)
        .replace("8d0ef837-6bd5-1240-6b9c-26383e505b59", "call-reinvite")
        .replace("rec-a", "rec-h-a");
    uac.send(bye.as_bytes()).await;
    assert_eq!(status(&uac.recv().await), 200);
    assert!(matches!(bed.event().await, LegEvent::Ended { key: 4, .. }));
    let summary = match bed.event().await {
        LegEvent::Finished { key: 4, result } => result.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(summary.stats.caller.packets, 25);
    let (left, _) = channels(&path);
    let first = left.iter().position(|&s| s != 0).unwrap();
    assert_eq!(
        dominant(&left[first + 500..first + 3500], &[440.0, 1000.0]),
        440.0
    );
    let (_, report) = bed.finish().await;
    assert_eq!(report.stray, 1);
}

#[tokio::test]
async fn an_expectation_is_refused_twice_and_beyond_its_bound() {
    let uas = UasConfig {
        max_expected: 1,
        ..UasConfig::default()
    };
    let bed = Bed::new("bounds", uas).await;
    bed.record(5, &[("rec-1-a", Leg::Caller)]).await;
    for user in ["rec-1-a", "rec-2-a"] {
        let (reply, answer) = oneshot::channel();
        bed.sip
            .send(SipCommand::Expect {
                user: user.to_owned(),
                key: 5,
                leg: Leg::Agent,
                reply,
            })
            .await
            .unwrap();
        let refused = answer.await.unwrap();
        assert!(
            matches!(
                refused,
                Err(MediaError::LegExpected { .. } | MediaError::SipFull { .. })
            ),
            "{refused:?}"
        );
    }
    bed.finish().await;
}
