//! The network side of a recorder leg: one tokio task per leg plays mod_sofia's UAC over
//! UDP and streams the leg's RTP. The messages are built and read by [`super::sip`]; what to
//! stream and when to stop comes from the core through [`net`](super::net).
//!
//! ```text
//!  INVITE ──(no reply: again at 0.5, 1, 2, 4, 4.. s, RFC 3261 timer A)──▶
//!  ◀── 1xx (retransmissions stop) ◀── 2xx ─▶ ACK, Report::Answered
//!      ◀── 3xx-6xx ─▶ ACK, Report::Failed(cause)     ICMP unreachable ─▶ Failed
//!  answered: RTP every 20 ms from 40 ms after the 2xx (capture: first packet ~41 ms after it)
//!      ◀── BYE ─▶ 200, Report::Bye        ◀── OPTIONS ─▶ 200
//!      Command::HangUp ─▶ 20 ms later BYE and one last RTP packet, as captured (not answered
//!      yet: CANCEL at once); the task ends
//! ```
//! RTP as captured (`eavesdrop-recorder-leg.rtp.json`): PT 0, 160 bytes of u-law per packet,
//! one SSRC, sequence +1 and timestamp +160 per packet, marker on the first. The tones are
//! summed sine waves with a continuous phase across packets and `Audio` changes.
//!
//! Bounds: one task per live SIP leg (the core's channel bound); its command channel holds
//! [`COMMANDS`] (the shell `try_send`s; a full channel drops an audio change, logged); one
//! receive buffer of [`MAX_DATAGRAM`]; INVITE retransmissions stop after 32 s (timer B) with
//! RECOVERY_ON_TIMER_EXPIRE, though the originate's own timeout normally comes first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};

use super::sip::{self, Dialog, Incoming, MAX_DATAGRAM};
use super::tone;

/// Commands a leg's task may have waiting.
pub const COMMANDS: usize = 64;
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_B: Duration = Duration::from_secs(32);
/// From the 2xx to the first RTP packet (the capture's ~41 ms).
const FIRST_RTP_AFTER: Duration = Duration::from_millis(40);
pub(super) const PTIME: Duration = Duration::from_millis(20);
const SAMPLES_PER_PACKET: u32 = 160;
/// From the hangup to the BYE: the capture's BYE left ~23 ms after `uuid_kill`, one media
/// tick later, and one more RTP packet followed it.
const BYE_AFTER: Duration = Duration::from_millis(20);

/// What the core asked of a running leg.
#[derive(Debug)]
pub enum Command {
    Audio(Vec<u32>),
    HangUp(String),
}

/// What happened to a leg, for the core.
#[derive(Debug)]
pub enum Report {
    Answered(String),
    Failed(String, &'static str),
    Bye(String),
}

/// Dials `user@to` for leg `leg` and runs it until it ends; reports on `report`.
pub fn spawn(
    leg: String,
    to: SocketAddr,
    user: String,
    from: String,
    report: mpsc::Sender<Report>,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(COMMANDS);
    tokio::spawn(async move {
        let outcome = run(&leg, to, &user, &from, rx, &report).await;
        if let Some(r) = outcome {
            let _ = report.send(r).await;
        }
    });
    tx
}

/// The whole leg; returns its last report (if the core still needs one).
async fn run(
    leg: &str,
    to: SocketAddr,
    user: &str,
    from: &str,
    mut commands: mpsc::Receiver<Command>,
    report: &mpsc::Sender<Report>,
) -> Option<Report> {
    let failed = |cause| Some(Report::Failed(leg.to_owned(), cause));
    let Ok((sip_sock, rtp_sock)) = bind_pair(to).await else {
        return failed("NORMAL_TEMPORARY_FAILURE");
    };
    let (Ok(local_sip), Ok(local_rtp)) = (sip_sock.local_addr(), rtp_sock.local_addr()) else {
        return failed("NORMAL_TEMPORARY_FAILURE");
    };
    let mut dialog = Dialog::new(leg, user, from, to, local_sip, local_rtp);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut tones: Vec<u32> = Vec::new();

    // ---- the INVITE transaction ----
    let invite = dialog.invite();
    let started = Instant::now();
    let mut interval = T1;
    let mut resend_at = Some(started + interval);
    if sip_sock.send(invite.as_bytes()).await.is_err() {
        return failed("NORMAL_TEMPORARY_FAILURE");
    }
    let media = loop {
        tokio::select! {
            r = sip_sock.recv(&mut buf) => {
                // An ICMP error on the connected socket (nothing listens there) ends the dial
                // as sofia's transport error does.
                let Ok(n) = r else { return failed("NORMAL_TEMPORARY_FAILURE") };
                match sip::parse(&buf[..n]) {
                    Some(Incoming::Response(resp)) if resp.method == "INVITE" => {
                        if resp.status < 200 {
                            resend_at = None;
                        } else if resp.status < 300 {
                            dialog.to_tag = resp.to_tag.clone();
                            let _ = sip_sock.send(dialog.ack().as_bytes()).await;
                            match resp.media {
                                Some(m) => break m,
                                // An answer without audio: sofia cannot stream; it hangs up.
                                None => {
                                    let _ = sip_sock
                                        .send(dialog.bye("INCOMPATIBLE_DESTINATION").as_bytes())
                                        .await;
                                    return failed("INCOMPATIBLE_DESTINATION");
                                }
                            }
                        } else {
                            let ack = dialog.ack_failure(resp.to_tag.as_deref());
                            let _ = sip_sock.send(ack.as_bytes()).await;
                            return failed(sip::cause_for_status(resp.status));
                        }
                    }
                    Some(Incoming::Request(req)) => {
                        let _ = sip_sock.send(sip::respond(&req, 200, "OK").as_bytes()).await;
                    }
                    _ => {}
                }
            }
            c = commands.recv() => match c {
                Some(Command::Audio(t)) => tones = t,
                // The originate timed out or the leg was killed before the answer.
                Some(Command::HangUp(_)) | None => {
                    let _ = sip_sock.send(dialog.cancel().as_bytes()).await;
                    return None;
                }
            },
            _ = sleep_until(resend_at.unwrap_or(started + TIMER_B)) => {
                if started.elapsed() >= TIMER_B {
                    return failed("RECOVERY_ON_TIMER_EXPIRE");
                }
                if resend_at.is_some() {
                    let _ = sip_sock.send(invite.as_bytes()).await;
                    interval = (interval * 2).min(T2);
                    resend_at = Some(Instant::now() + interval);
                }
            }
        }
    };
    if report.send(Report::Answered(leg.to_owned())).await.is_err() {
        return None;
    }

    // ---- answered: RTP until one side hangs up ----
    let mut rtp = RtpStream::new(leg);
    let mut ticks = tokio::time::interval_at(Instant::now() + FIRST_RTP_AFTER, PTIME);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rtp_in = [0u8; 2048];
    let mut bye: Option<(Instant, String)> = None;
    loop {
        let bye_at = bye.as_ref().map(|(at, _)| *at);
        tokio::select! {
            _ = ticks.tick() => {
                let packet = rtp.next_packet(&tones);
                let _ = rtp_sock.send_to(&packet, media).await;
            }
            _ = sleep_until(bye_at.unwrap_or_else(Instant::now)), if bye_at.is_some() => {
                let cause = bye.map(|(_, c)| c).unwrap_or_default();
                let _ = sip_sock.send(dialog.bye(&cause).as_bytes()).await;
                let _ = rtp_sock.send_to(&rtp.next_packet(&tones), media).await;
                return None;
            }
            r = sip_sock.recv(&mut buf) => {
                let Ok(n) = r else { continue };
                match sip::parse(&buf[..n]) {
                    Some(Incoming::Request(req)) if req.method == "BYE" => {
                        let _ = sip_sock.send(sip::respond(&req, 200, "OK").as_bytes()).await;
                        // Already hanging up ourselves: the core knows; nothing to report.
                        return if bye.is_some() { None } else { Some(Report::Bye(leg.to_owned())) };
                    }
                    Some(Incoming::Request(req)) => {
                        let _ = sip_sock.send(sip::respond(&req, 200, "OK").as_bytes()).await;
                    }
                    // The far end did not see our ACK and resends its 2xx.
                    Some(Incoming::Response(resp)) if resp.method == "INVITE" && resp.status >= 200 => {
                        let _ = sip_sock.send(dialog.ack().as_bytes()).await;
                    }
                    _ => {}
                }
            }
            // Whatever the far end streams to us is read and dropped, so it never piles up.
            _ = rtp_sock.recv_from(&mut rtp_in) => {}
            c = commands.recv(), if bye.is_none() => match c {
                Some(Command::Audio(t)) => tones = t,
                Some(Command::HangUp(cause)) => bye = Some((Instant::now() + BYE_AFTER, cause)),
                None => bye = Some((Instant::now() + BYE_AFTER, "NORMAL_CLEARING".to_owned())),
            },
        }
    }
}

/// A SIP and an RTP socket on the address family and interface that reach `to`; the SIP one
/// connected, so an ICMP port-unreachable comes back as an error.
async fn bind_pair(to: SocketAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let any = match (to.ip().is_loopback(), to.ip()) {
        (true, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (true, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (false, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (false, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sip_sock = UdpSocket::bind((any, 0)).await?;
    sip_sock.connect(to).await?;
    // The connected socket's source address is the one to put in the SDP.
    let local = sip_sock.local_addr()?.ip();
    let rtp_sock = UdpSocket::bind((local, 0)).await?;
    Ok((sip_sock, rtp_sock))
}

/// One RTP stream: header fields and the tones' phase.
pub(super) struct RtpStream {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    first: bool,
    /// Samples sent so far: the tones' phase stays continuous.
    samples: u64,
}

impl RtpStream {
    pub(super) fn new(leg: &str) -> RtpStream {
        // Derived from the leg, like the dialog's tags: a run is reproducible.
        let mut h: u32 = 0x811c_9dc5;
        for b in leg.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        RtpStream {
            ssrc: h,
            seq: (h >> 7) as u16,
            timestamp: h.rotate_left(11),
            first: true,
            samples: 0,
        }
    }

    pub(super) fn next_packet(&mut self, tones: &[u32]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + SAMPLES_PER_PACKET as usize);
        p.push(0x80); // version 2, no padding, no extension, no CSRC
        p.push(if self.first { 0x80 } else { 0x00 }); // marker, PT 0 (PCMU)
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for _ in 0..SAMPLES_PER_PACKET {
            let t = Duration::from_nanos(self.samples * 125_000);
            p.push(tone::ulaw(tone::to_i16(tone::sample(tones, t))));
            self.samples += 1;
        }
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(SAMPLES_PER_PACKET);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_packets_are_pcmu_with_a_first_marker_and_steady_seq_and_timestamp() {
        let mut s = RtpStream::new("leg");
        let a = s.next_packet(&[440]);
        let b = s.next_packet(&[440]);
        assert_eq!((a.len(), b.len()), (172, 172));
        assert_eq!((a[0], a[1], b[1]), (0x80, 0x80, 0x00));
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&b), seq(&a).wrapping_add(1));
        assert_eq!(ts(&b), ts(&a).wrapping_add(160));
        assert_eq!(a[8..12], b[8..12]);
    }

    #[test]
    fn silence_is_ulaw_0xff() {
        let mut s = RtpStream::new("leg");
        assert!(s.next_packet(&[])[12..].iter().all(|b| *b == 0xff));
    }
}
