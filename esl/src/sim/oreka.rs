//! The network side of a mod_oreka fork: one tokio task per forked channel sends mod_oreka's
//! datagrams and streams its RTP, as mod_oreka.c (FreeSWITCH 1.10.12) does.
//!
//! ```text
//!  Start ─▶ bind RX (and TX) RTP ports on the switch's address; INVITE RX, INVITE TX, each
//!           once to the server (never retransmitted, answers never read)
//!        ─▶ every 20 ms: RX carries what the channel says, TX what it hears, each to the
//!           server's address at the same port number as its own
//!  Audio ─▶ the tones change         Stop (or the command channel closed) ─▶ BYE RX, BYE TX
//! ```
//! With `mux`, only RX goes, carrying both directions mixed. The datagrams follow
//! `oreka_send_sip_message` to the byte: one Call-ID (the channel's uuid), one Via branch
//! (`z9hG4bK-<uuid>`) and `CSeq: 1` for all four, told apart by the Subject and the SDP's
//! `s=` line; the body is followed by one stray `\n` past its Content-Length.

use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::core::OrekaAction;
use super::uac::{PTIME, RtpStream};

/// Audio changes and the stop a fork's task may have waiting.
pub const COMMANDS: usize = 64;

#[derive(Debug)]
pub enum Command {
    Audio { said: Vec<u32>, heard: Vec<u32> },
    Stop,
}

/// What a fork's datagrams say about the channel (fields of `OrekaAction::Start`).
#[derive(Clone, Debug)]
struct Call {
    uuid: String,
    server: SocketAddr,
    local_ip: IpAddr,
    caller_number: String,
    caller_name: String,
    callee_number: String,
    callee_name: String,
    headers: Vec<(String, String)>,
}

/// Starts the fork of `action` (an `OrekaAction::Start`); `None` for any other action.
pub fn spawn(action: OrekaAction) -> Option<mpsc::Sender<Command>> {
    let OrekaAction::Start {
        uuid,
        server,
        local_ip,
        caller_number,
        caller_name,
        callee_number,
        callee_name,
        mux,
        headers,
        said,
        heard,
    } = action
    else {
        return None;
    };
    let call = Call {
        uuid,
        server,
        local_ip,
        caller_number,
        caller_name,
        callee_number,
        callee_name,
        headers,
    };
    let (tx, rx) = mpsc::channel(COMMANDS);
    tokio::spawn(async move {
        if let Err(e) = run(&call, mux, said, heard, rx).await {
            tracing::warn!(uuid = %call.uuid, error = %e, "fake switch: mod_oreka fork failed");
        }
    });
    Some(tx)
}

async fn run(
    call: &Call,
    mux: bool,
    mut said: Vec<u32>,
    mut heard: Vec<u32>,
    mut commands: mpsc::Receiver<Command>,
) -> std::io::Result<()> {
    // mod_oreka's SIP socket is never bound: the kernel picks the port.
    let sip = UdpSocket::bind((call.local_ip, 0)).await?;
    let rx = UdpSocket::bind((call.local_ip, 0)).await?;
    let tx = if mux {
        None
    } else {
        Some(UdpSocket::bind((call.local_ip, 0)).await?)
    };
    let rx_port = rx.local_addr()?.port();
    let tx_port = match &tx {
        Some(s) => Some(s.local_addr()?.port()),
        None => None,
    };
    sip.send_to(&datagram(call, true, true, rx_port), call.server)
        .await?;
    if let Some(port) = tx_port {
        sip.send_to(&datagram(call, true, false, port), call.server)
            .await?;
    }
    let mut rx_stream = RtpStream::new(&format!("{}-rx", call.uuid));
    let mut tx_stream = RtpStream::new(&format!("{}-tx", call.uuid));
    let mut ticks = tokio::time::interval(PTIME);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let rx_tones: Vec<u32> = if mux {
                    said.iter().chain(&heard).copied().collect()
                } else {
                    said.clone()
                };
                let to = SocketAddr::new(call.server.ip(), rx_port);
                let _ = rx.send_to(&rx_stream.next_packet(&rx_tones), to).await;
                if let (Some(tx), Some(port)) = (&tx, tx_port) {
                    let to = SocketAddr::new(call.server.ip(), port);
                    let _ = tx.send_to(&tx_stream.next_packet(&heard), to).await;
                }
            }
            c = commands.recv() => match c {
                Some(Command::Audio { said: s, heard: h }) => (said, heard) = (s, h),
                Some(Command::Stop) | None => break,
            },
        }
    }
    sip.send_to(&datagram(call, false, true, 0), call.server)
        .await?;
    if tx_port.is_some() {
        sip.send_to(&datagram(call, false, false, 0), call.server)
            .await?;
    }
    Ok(())
}

/// `oreka_send_sip_message`: the INVITE (`begin`) or BYE of the RX or TX direction.
fn datagram(call: &Call, begin: bool, rx: bool, port: u16) -> Vec<u8> {
    let Call {
        uuid,
        server,
        local_ip: local,
        ..
    } = call;
    let server_ip = server.ip();
    let method = if begin { "INVITE" } else { "BYE" };
    let dir = if rx { "RX" } else { "TX" };
    let mut sdp = String::new();
    if begin {
        sdp.push_str("v=0\r\n");
        sdp.push_str(&format!("o=freeswitch {uuid} 1 IN IP4 {local}\r\n"));
        sdp.push_str(&format!("c=IN IP4 {server_ip}\r\n"));
        sdp.push_str(&format!("s=Phone Recording ({dir})\r\n"));
        sdp.push_str(&format!(
            "i=FreeSWITCH Oreka Recorder (pid={})\r\n",
            std::process::id()
        ));
        sdp.push_str(&format!("m=audio {port} RTP/AVP 0\r\n"));
        sdp.push_str("a=rtpmap:0 PCMU/8000\r\n");
    }
    let mut head = String::new();
    head.push_str(&format!(
        "{method} sip:{}@{local}:5060 SIP/2.0\r\n",
        call.callee_name
    ));
    head.push_str(&format!(
        "Via: SIP/2.0/UDP {local}:5061;branch=z9hG4bK-{uuid}\r\n"
    ));
    head.push_str(&format!(
        "From: <sip:{}@{local}:5061;tag=1>\r\n",
        call.caller_number
    ));
    head.push_str(&format!(
        "To: <sip:{}@{local}:5060>\r\n",
        call.callee_number
    ));
    head.push_str(&format!("Call-ID: {uuid}\r\n"));
    head.push_str(&format!("CSeq: 1 {method}\r\n"));
    head.push_str(&format!("Contact: sip:freeswitch@{local}:5061\r\n"));
    head.push_str("Max-Forwards: 70\r\n");
    let phase = if begin { "BEGIN" } else { "END" };
    head.push_str(&format!(
        "Subject: {phase} {dir} recording of {}\r\n",
        call.caller_name
    ));
    for (name, value) in &call.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if begin {
        head.push_str("Content-Type: application/sdp\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n", sdp.len()));
    format!("{head}\r\n{sdp}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rx_invite_is_mod_orekas_layout() {
        let call = Call {
            uuid: "u-1".into(),
            server: "127.0.0.1:5090".parse().unwrap(),
            local_ip: "127.0.0.2".parse().unwrap(),
            caller_number: "1000".into(),
            caller_name: "Alice".into(),
            callee_number: "5000".into(),
            callee_name: "Support Line".into(),
            headers: vec![("X-Call".into(), "c-1".into())],
        };
        let invite = String::from_utf8(datagram(&call, true, true, 24_680)).unwrap();
        assert!(invite.starts_with("INVITE sip:Support Line@127.0.0.2:5060 SIP/2.0\r\n"));
        assert!(invite.contains("Subject: BEGIN RX recording of Alice\r\n"));
        assert!(invite.contains("X-Call: c-1\r\n"));
        assert!(
            invite.contains("c=IN IP4 127.0.0.1\r\n"),
            "the server's address"
        );
        assert!(invite.contains("m=audio 24680 RTP/AVP 0\r\n"));
        let (head, body) = invite.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len + 1, "one stray newline past the body");
        let bye = String::from_utf8(datagram(&call, false, false, 0)).unwrap();
        assert!(bye.starts_with("BYE sip:Support Line@"));
        assert!(bye.contains("CSeq: 1 BYE\r\nContact"));
        assert!(bye.ends_with("Content-Length: 0\r\n\r\n\n"));
    }
}
