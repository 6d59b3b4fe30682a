//! Recorder legs over real UDP on 127.0.0.1: the fake switch, driven over ESL (TCP), dials a
//! small SIP UAS of ours with `&eavesdrop(<caller>)`, as switchyard will, and the UAS checks
//! what arrives against `eavesdrop-recorder-leg.md`: SIP ladder, RTP header behaviour, and
//! each leg carrying its party's tone (told apart by Goertzel, not by size).
//!
//! Real time (RTP is paced by the clock), so each test lasts a couple of seconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use switchyard_esl::codec::{EslCodec, Event, Message};
use switchyard_esl::sim::tone::{goertzel, ulaw_decode};
use switchyard_esl::sim::{SimConfig, SimHandle};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

// ---- the test UAS --------------------------------------------------------------------------

/// Packets kept per leg (a test streams a few seconds: 50 a second).
const MAX_PACKETS: usize = 1000;

#[derive(Default)]
struct Seen {
    invites: Vec<String>,
    acks: Vec<String>,
    byes: Vec<(String, Instant)>,
    /// RTP per leg (by request user), with arrival times.
    rtp: HashMap<String, Vec<(Instant, Vec<u8>)>>,
    answered_at: HashMap<String, Instant>,
    /// The last INVITE and where it came from (for a BYE of our own).
    last_invite: Option<(String, SocketAddr)>,
    /// Status lines of responses the switch sent us.
    responses: Vec<String>,
}

/// Answers INVITE with 100 + 200 (SDP naming an RTP socket of its own per call), or with
/// `reject` if set; 200 to BYE and OPTIONS.
struct Uas {
    addr: SocketAddr,
    sock: Arc<UdpSocket>,
    seen: Arc<Mutex<Seen>>,
}

impl Uas {
    async fn start(reject: Option<u16>) -> Uas {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s2 = seen.clone();
        let sock2 = sock.clone();
        tokio::spawn(async move {
            let sock = sock2;
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let Some(line) = text.lines().next() else {
                    continue;
                };
                let method = line.split(' ').next().unwrap_or("").to_owned();
                let user = line
                    .split(' ')
                    .nth(1)
                    .and_then(|u| u.strip_prefix("sip:"))
                    .and_then(|u| u.split('@').next())
                    .unwrap_or("")
                    .to_owned();
                let echo: String = text
                    .lines()
                    .filter(|l| {
                        ["Via:", "From:", "Call-ID:", "CSeq:"]
                            .iter()
                            .any(|h| l.starts_with(h))
                    })
                    .map(|l| format!("{l}\r\n"))
                    .collect();
                let to = text
                    .lines()
                    .find(|l| l.starts_with("To:"))
                    .unwrap_or("To: <sip:x@127.0.0.1>")
                    .to_owned();
                let reply = |status: &str, extra: &str, body: &str| {
                    format!(
                        "SIP/2.0 {status}\r\n{echo}{to}{extra}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                match method.as_str() {
                    "SIP/2.0" => s2.lock().unwrap().responses.push(line.to_owned()),
                    "INVITE" => {
                        {
                            let mut s = s2.lock().unwrap();
                            s.invites.push(user.clone());
                            s.last_invite = Some((text.clone(), from));
                        }
                        let _ = sock
                            .send_to(reply("100 Trying", "", "").as_bytes(), from)
                            .await;
                        if let Some(code) = reject {
                            let r = reply(&format!("{code} Rejected"), ";tag=rej", "");
                            let _ = sock.send_to(r.as_bytes(), from).await;
                            continue;
                        }
                        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                        let port = rtp.local_addr().unwrap().port();
                        let sdp = format!(
                            "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                             a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
                        );
                        let ok = reply(
                            "200 OK",
                            ";tag=uas1\r\nContact: <sip:uas@127.0.0.1>\r\nContent-Type: application/sdp",
                            &sdp,
                        );
                        s2.lock()
                            .unwrap()
                            .answered_at
                            .insert(user.clone(), Instant::now());
                        let _ = sock.send_to(ok.as_bytes(), from).await;
                        let s3 = s2.clone();
                        tokio::spawn(async move {
                            let mut b = [0u8; 2048];
                            while let Ok(n) = rtp.recv(&mut b).await {
                                let mut s = s3.lock().unwrap();
                                let v = s.rtp.entry(user.clone()).or_default();
                                if v.len() < MAX_PACKETS {
                                    v.push((Instant::now(), b[..n].to_vec()));
                                }
                            }
                        });
                    }
                    "ACK" => s2.lock().unwrap().acks.push(user),
                    "BYE" => {
                        s2.lock().unwrap().byes.push((user, Instant::now()));
                        let _ = sock.send_to(reply("200 OK", "", "").as_bytes(), from).await;
                    }
                    "OPTIONS" | "CANCEL" => {
                        let _ = sock.send_to(reply("200 OK", "", "").as_bytes(), from).await;
                    }
                    _ => {}
                }
            }
        });
        Uas { addr, sock, seen }
    }

    /// Hangs the last call up from our side: a BYE within its dialog.
    async fn send_bye(&self) {
        let (invite, to) = self
            .seen(|s| s.last_invite.clone())
            .expect("an INVITE came");
        let header = |name: &str| {
            invite
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let bye = format!(
            "BYE sip:mod_sofia@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKuasbye\r\n\
             From: {from};tag=uas1\r\nTo: {their}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            me = self.addr,
            from = header("To:"),
            their = header("From:"),
            cid = header("Call-ID:"),
        );
        self.sock.send_to(bye.as_bytes(), to).await.unwrap();
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.seen(&f) {
            assert!(Instant::now() < deadline, "UAS never saw {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---- the ESL side --------------------------------------------------------------------------

struct Esl {
    rd: FramedRead<tokio::net::tcp::OwnedReadHalf, EslCodec>,
    wr: tokio::net::tcp::OwnedWriteHalf,
    /// Every event read so far, in order.
    events: Vec<Event>,
}

impl Esl {
    async fn connect(sim: &SimHandle) -> Esl {
        let (r, w) = TcpStream::connect(sim.local_addr())
            .await
            .unwrap()
            .into_split();
        let mut e = Esl {
            rd: FramedRead::new(r, EslCodec::default()),
            wr: w,
            events: Vec::new(),
        };
        e.next().await;
        e.command("auth ClueCon").await;
        e.command(
            "event plain CHANNEL_OUTGOING CHANNEL_CREATE CHANNEL_ORIGINATE CODEC CHANNEL_ANSWER \
             CALL_UPDATE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_BRIDGE \
             BACKGROUND_JOB",
        )
        .await;
        e
    }

    async fn next(&mut self) -> Message {
        let m = tokio::time::timeout(Duration::from_secs(20), self.rd.next())
            .await
            .expect("a message in time")
            .expect("connection open")
            .expect("decodes");
        if let Message::Event(e) = &m {
            self.events.push(e.clone());
        }
        m
    }

    async fn send(&mut self, cmd: &str) {
        self.wr
            .write_all(format!("{cmd}\n\n").as_bytes())
            .await
            .unwrap();
    }

    async fn command(&mut self, cmd: &str) -> String {
        self.send(cmd).await;
        loop {
            if let Message::CommandReply(r) = self.next().await {
                return r.text().into_owned();
            }
        }
    }

    async fn api(&mut self, cmd: &str) -> String {
        self.send(&format!("api {cmd}")).await;
        loop {
            if let Message::ApiResponse(b) = self.next().await {
                return String::from_utf8_lossy(&b).into_owned();
            }
        }
    }

    /// `bgapi` and its BACKGROUND_JOB's body.
    async fn bgapi(&mut self, cmd: &str) -> String {
        let reply = self.command(&format!("bgapi {cmd}")).await;
        let job = reply
            .strip_prefix("+OK Job-UUID: ")
            .unwrap_or_else(|| panic!("bgapi refused: {reply}"))
            .trim()
            .to_owned();
        self.until(|e| {
            e.name().as_deref() == Some("BACKGROUND_JOB")
                && e.header("Job-UUID").as_deref() == Some(job.as_str())
        })
        .await
        .body_str()
        .map(|b| b.into_owned())
        .unwrap_or_default()
    }

    async fn until(&mut self, f: impl Fn(&Event) -> bool) -> Event {
        if let Some(e) = self.events.iter().find(|e| f(e)) {
            return e.clone();
        }
        loop {
            if let Message::Event(e) = self.next().await
                && f(&e)
            {
                return e;
            }
        }
    }

    async fn until_named(&mut self, name: &str, uuid: &str) -> Event {
        self.until(|e| e.name().as_deref() == Some(name) && e.unique_id().as_deref() == Some(uuid))
            .await
    }

    async fn tone(&mut self, uuid: &str) -> f64 {
        let v = self.api(&format!("uuid_getvar {uuid} sim_tone_hz")).await;
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no tone for {uuid}: {v}"))
    }

    /// A caller (loopback, parked) and an agent (`user/1000`, parked), bridged.
    async fn bridged_pair(&mut self) -> (String, String) {
        let (c, u) = (
            "c0000000-0000-4000-8000-000000000001".to_owned(),
            "a0000000-0000-4000-8000-000000000001".to_owned(),
        );
        let job = self
            .bgapi(&format!(
                "originate {{origination_uuid={c}}}loopback/9441 &park()"
            ))
            .await;
        assert_eq!(job, format!("+OK {c}\n"));
        let job = self
            .bgapi(&format!(
                "originate {{origination_uuid={u}}}user/1000 &park()"
            ))
            .await;
        assert_eq!(job, format!("+OK {u}\n"));
        assert!(
            self.api(&format!("uuid_bridge {c} {u}"))
                .await
                .starts_with("+OK")
        );
        self.until_named("CHANNEL_BRIDGE", &c).await;
        (c, u)
    }
}

async fn start_switch() -> SimHandle {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_esl::sim::spawn(l, SimConfig::default(), 18)
}

fn recorder_originate(
    leg: &str,
    flag: Option<&str>,
    user: &str,
    to: SocketAddr,
    target: &str,
) -> String {
    let flag = flag.map(|f| format!(",{f}=true")).unwrap_or_default();
    format!(
        "originate {{origination_uuid={leg},switchyard_leg=recorder{flag},absolute_codec_string=PCMU,\
         originate_timeout=10}}sofia/internal/{user}@{to} &eavesdrop({target})"
    )
}

/// The u-law payloads of `packets` from `skip` on, decoded.
fn pcm(packets: &[(Instant, Vec<u8>)], skip: usize) -> Vec<i16> {
    packets
        .iter()
        .skip(skip)
        .flat_map(|(_, p)| p[12..].iter().map(|b| ulaw_decode(*b)))
        .collect()
}

// ---- tests ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aleg_and_bleg_recorder_legs_carry_the_caller_and_the_agent_and_end_with_bye_at_the_callers_hangup()
 {
    let uas = Uas::start(None).await;
    let sim = start_switch().await;
    let mut esl = Esl::connect(&sim).await;
    let (c, u) = esl.bridged_pair().await;
    let (caller_hz, agent_hz) = (esl.tone(&c).await, esl.tone(&u).await);
    assert_eq!(sim.tone_hz(&u).await, Some(agent_hz as u32));
    assert!((400.0..=480.0).contains(&caller_hz) && (960.0..=1040.0).contains(&agent_hz));

    let (ra, rb) = (
        "e0000000-0000-4000-8000-00000000000a".to_owned(),
        "e0000000-0000-4000-8000-00000000000b".to_owned(),
    );
    let job_a = esl
        .bgapi(&recorder_originate(
            &ra,
            Some("eavesdrop_bridge_aleg"),
            "rec-7-a",
            uas.addr,
            &c,
        ))
        .await;
    let job_b = esl
        .bgapi(&recorder_originate(
            &rb,
            Some("eavesdrop_bridge_bleg"),
            "rec-7-b",
            uas.addr,
            &c,
        ))
        .await;
    assert_eq!(
        (job_a, job_b),
        (format!("+OK {ra}\n"), format!("+OK {rb}\n"))
    );
    uas.wait_for("two ACKs", |s| s.acks.len() == 2).await;
    assert_eq!(uas.seen(|s| s.invites.clone()), ["rec-7-a", "rec-7-b"]);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    assert_eq!(esl.api(&format!("uuid_kill {c}")).await, "+OK\n");
    for leg in [&ra, &rb] {
        let h = esl.until_named("CHANNEL_HANGUP", leg).await;
        assert_eq!(h.hangup_cause().as_deref(), Some("NORMAL_CLEARING"));
    }
    uas.wait_for("two BYEs", |s| s.byes.len() == 2).await;
    // The capture's BYE left ~23 ms after the kill: one media tick, then the BYE.
    for (_, at) in uas.seen(|s| s.byes.clone()) {
        let after = at.duration_since(killed);
        assert!(
            (Duration::from_millis(15)..Duration::from_millis(500)).contains(&after),
            "BYE {after:?} after the kill"
        );
    }

    // The recorder leg's events, in the capture's order.
    let order: Vec<String> = esl
        .events
        .iter()
        .filter(|e| e.unique_id().as_deref() == Some(ra.as_str()))
        .filter_map(|e| e.name().map(|n| n.into_owned()))
        .collect();
    let expected = [
        "CHANNEL_OUTGOING",
        "CHANNEL_CREATE",
        "CHANNEL_ORIGINATE",
        "CODEC",
        "CODEC",
        "CHANNEL_ANSWER",
        "CALL_UPDATE",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HANGUP",
    ];
    assert_eq!(order, expected);
    let exec = esl
        .until(|e| {
            e.unique_id().as_deref() == Some(ra.as_str())
                && e.name().as_deref() == Some("CHANNEL_EXECUTE")
        })
        .await;
    assert_eq!(exec.header("Application").as_deref(), Some("eavesdrop"));
    assert_eq!(exec.header("Application-Data").as_deref(), Some(c.as_str()));

    // RTP: 20 ms PCMU, one SSRC, seq +1, timestamp +160, marker on the first packet only.
    let streams = uas.seen(|s| s.rtp.clone());
    for (user, packets) in &streams {
        assert!(packets.len() >= 60, "{user}: {} packets", packets.len());
        let first = &packets[0].1;
        let ssrc = &first[8..12];
        assert_eq!(
            first[1], 0x80,
            "{user}: marker and PT 0 on the first packet"
        );
        for w in packets.windows(2) {
            let (a, b) = (&w[0].1, &w[1].1);
            assert_eq!(b.len(), 172);
            assert_eq!((b[0], b[1]), (0x80, 0x00));
            assert_eq!(&b[8..12], ssrc);
            let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
            let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            assert_eq!(seq(b), seq(a).wrapping_add(1));
            assert_eq!(ts(b), ts(a).wrapping_add(160));
        }
        // Paced by the clock at 20 ms (never faster; the bound above is slack for a loaded
        // machine, not a speed claim).
        let span = packets.last().unwrap().0 - packets[0].0;
        let mean = span / (packets.len() as u32 - 1);
        assert!(
            (Duration::from_millis(19)..=Duration::from_millis(40)).contains(&mean),
            "{user}: mean inter-arrival {mean:?}"
        );
        let answered = uas.seen(|s| s.answered_at[user]);
        let lead = packets[0].0 - answered;
        assert!(
            (Duration::from_millis(30)..Duration::from_millis(500)).contains(&lead),
            "{user}: first RTP {lead:?} after the 200"
        );
    }
    // Each leg carries its own party: the caller on aleg, the agent on bleg, never the other.
    // The first packets go before the eavesdrop starts (silence), so they are skipped.
    let a = pcm(&streams["rec-7-a"], 10);
    let b = pcm(&streams["rec-7-b"], 10);
    assert!(goertzel(&a, 8000, caller_hz) > 100.0 * goertzel(&a, 8000, agent_hz));
    assert!(goertzel(&b, 8000, agent_hz) > 100.0 * goertzel(&b, 8000, caller_hz));
    assert!(goertzel(&a, 8000, caller_hz) > 0.001);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_leg_to_a_closed_port_fails_its_originate_with_normal_temporary_failure() {
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let sim = start_switch().await;
    let mut esl = Esl::connect(&sim).await;
    let (c, _) = esl.bridged_pair().await;
    let leg = "e0000000-0000-4000-8000-0000000000c1";
    let job = esl
        .bgapi(&recorder_originate(
            leg,
            Some("eavesdrop_bridge_aleg"),
            "rec-8-a",
            closed,
            &c,
        ))
        .await;
    assert_eq!(job, "-ERR NORMAL_TEMPORARY_FAILURE\n");
    assert_eq!(esl.api(&format!("uuid_exists {leg}")).await, "false");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_486_from_the_uas_fails_the_recorder_originate_with_user_busy() {
    let uas = Uas::start(Some(486)).await;
    let sim = start_switch().await;
    let mut esl = Esl::connect(&sim).await;
    let (c, _) = esl.bridged_pair().await;
    let leg = "e0000000-0000-4000-8000-0000000000d1";
    let job = esl
        .bgapi(&recorder_originate(leg, None, "rec-9-m", uas.addr, &c))
        .await;
    assert_eq!(job, "-ERR USER_BUSY\n");
    // The non-2xx final response is ACKed, as a client transaction must.
    uas.wait_for("the ACK of the 486", |s| s.acks.len() == 1)
        .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eavesdrop_on_no_channel_hangs_the_recorder_leg_up_right_after_the_answer() {
    let uas = Uas::start(None).await;
    let sim = start_switch().await;
    let mut esl = Esl::connect(&sim).await;
    let leg = "e0000000-0000-4000-8000-0000000000e1";
    let nobody = "00000000-dead-4000-8000-000000000000";
    let job = esl
        .bgapi(&recorder_originate(
            leg,
            Some("eavesdrop_bridge_aleg"),
            "rec-10-a",
            uas.addr,
            nobody,
        ))
        .await;
    assert_eq!(job, format!("+OK {leg}\n"));
    let h = esl.until_named("CHANNEL_HANGUP", leg).await;
    assert_eq!(h.hangup_cause().as_deref(), Some("NORMAL_CLEARING"));
    uas.wait_for("the BYE", |s| s.byes.len() == 1).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_originate_without_a_usable_sip_url_fails_at_once() {
    let sim = start_switch().await;
    let mut esl = Esl::connect(&sim).await;
    let job = esl
        .bgapi("originate {origination_uuid=e1}sofia/internal/rec-11-a &eavesdrop(x)")
        .await;
    assert_eq!(job, "-ERR INVALID_URL\n");
    let job = esl
        .bgapi("originate sofia/internal/rec-11-a@recorder.example:5090 &eavesdrop(x)")
        .await;
    assert_eq!(job, "-ERR INVALID_URL\n");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uuid_kill_of_a_recorder_leg_sends_bye_and_a_bye_from_the_uas_hangs_one_up() {
    let uas = Uas::start(None).await;
    let sim = start_switch().await;
    let mut esl = Esl::connect(&sim).await;
    let (c, _) = esl.bridged_pair().await;
    let (r1, r2) = (
        "e0000000-0000-4000-8000-0000000000f1",
        "e0000000-0000-4000-8000-0000000000f2",
    );
    let job = esl
        .bgapi(&recorder_originate(r1, None, "rec-12-m", uas.addr, &c))
        .await;
    assert_eq!(job, format!("+OK {r1}\n"));
    assert_eq!(esl.api(&format!("uuid_kill {r1}")).await, "+OK\n");
    let h = esl.until_named("CHANNEL_HANGUP", r1).await;
    assert_eq!(h.hangup_cause().as_deref(), Some("NORMAL_CLEARING"));
    uas.wait_for("the BYE of the killed leg", |s| s.byes.len() == 1)
        .await;

    let job = esl
        .bgapi(&recorder_originate(r2, None, "rec-13-m", uas.addr, &c))
        .await;
    assert_eq!(job, format!("+OK {r2}\n"));
    uas.wait_for("the second ACK", |s| s.acks.len() == 2).await;
    uas.send_bye().await;
    let h = esl.until_named("CHANNEL_HANGUP", r2).await;
    assert_eq!(h.hangup_cause().as_deref(), Some("NORMAL_CLEARING"));
    uas.wait_for("200 to our BYE", |s| {
        s.responses.iter().any(|r| r.starts_with("SIP/2.0 200"))
    })
    .await;
    // Our BYE ended it: the switch sends none of its own.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(uas.seen(|s| s.byes.len()), 1);
    // The caller is untouched by either.
    assert_eq!(esl.api(&format!("uuid_exists {c}")).await, "true");
    sim.shutdown().await;
}
