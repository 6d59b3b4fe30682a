//! mod_oreka's recorder INVITEs, read as FreeSWITCH 1.10 writes them (mod_oreka.c, removed
//! from FreeSWITCH's tree after 1.10.12 but still built by operators who used it).
//!
//! `oreka_record` forks a channel's two directions to a recorder with no extra channel: at the
//! media bug's start it sends one INVITE per direction, and at its close one BYE per
//! direction, each a single UDP datagram it never retransmits and whose answer it never reads.
//! What that means for the endpoint:
//! - The two INVITEs share everything a SIP stack keys on: Call-ID (the channel's uuid), the Via
//!   branch (`z9hG4bK-<uuid>`) and `CSeq: 1 INVITE`. Only the SDP's `s=Phone Recording (RX)` /
//!   `(TX)` and the Subject (`BEGIN RX recording of <name>`) tell them apart; BYEs carry only
//!   the Subject (`END TX recording of <name>`). A transaction layer would take the second for
//!   a retransmission of the first, so these datagrams never reach it.
//! - The Request-URI is `sip:<callee name>@<FreeSWITCH's own address>:5060`; the name may hold
//!   spaces, so a strict parser refuses the line. The Call-ID is what names the recording:
//!   the engine announces the customer leg's uuid before it runs `oreka_record` on it.
//! - RX is what FreeSWITCH reads from the channel (the caller's voice, the left channel), TX
//!   what it writes to it (what the caller hears, the right channel). With
//!   `oreka_mux_streams` only RX is sent, carrying both directions mixed.
//! - RTP ignores any answer: it goes to the recorder's address (the `c=` line names the
//!   recorder, not FreeSWITCH) at the same port number FreeSWITCH bound locally (the `m=` port),
//!   from FreeSWITCH's address (the `o=` line's), PCMU at 8 kHz (mod_oreka resamples to 8 kHz
//!   whatever the `rtpmap` says). The recorder therefore has to listen on that port.

use std::net::IpAddr;

use crate::config::Leg;

/// What an mod_oreka datagram says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForkMessage {
    pub begin: bool,
    /// RX -> `Leg::Caller`, TX -> `Leg::Agent`.
    pub leg: Leg,
    pub call_id: String,
    /// From the SDP of a BEGIN: the port FreeSWITCH sends from, and to on the recorder.
    pub port: Option<u16>,
    /// From the SDP's `o=` line: the address FreeSWITCH sends RTP from.
    pub origin: Option<IpAddr>,
    /// Echoed in the response, as received.
    pub via: String,
    pub from: String,
    pub to: String,
    pub cseq: String,
}

/// `None`: not an mod_oreka datagram (no `Subject: BEGIN|END RX|TX recording of`). `Some(Err)`:
/// one that lacks what it must carry (a Call-ID, or a BEGIN without an audio port).
pub(crate) fn parse(datagram: &[u8]) -> Option<Result<ForkMessage, ()>> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (head, body) = match text.split_once("\r\n\r\n") {
        Some((head, body)) => (head, body),
        None => (text, ""),
    };
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let mut subject = None;
    let (mut call_id, mut via, mut from, mut to, mut cseq) = (None, None, None, None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "subject" | "s" => subject = Some(value),
            "call-id" | "i" => call_id = Some(value),
            "via" | "v" if via.is_none() => via = Some(value),
            "from" | "f" => from = Some(value),
            "to" | "t" => to = Some(value),
            "cseq" => cseq = Some(value),
            _ => {}
        }
    }
    let (begin, leg) = subject_facts(subject?)?;
    let method_ok = if begin {
        first.starts_with("INVITE ")
    } else {
        first.starts_with("BYE ")
    };
    let message = (|| {
        if !method_ok || !first.ends_with(" SIP/2.0") {
            return Err(());
        }
        let (port, origin) = if begin {
            let (port, origin) = sdp_facts(body).ok_or(())?;
            (Some(port), origin)
        } else {
            (None, None)
        };
        Ok(ForkMessage {
            begin,
            leg,
            call_id: call_id.filter(|c| !c.is_empty()).ok_or(())?.to_owned(),
            port,
            origin,
            via: via.ok_or(())?.to_owned(),
            from: from.ok_or(())?.to_owned(),
            to: to.ok_or(())?.to_owned(),
            cseq: cseq.ok_or(())?.to_owned(),
        })
    })();
    Some(message)
}

/// `BEGIN RX recording of Alice` -> (begin, leg).
fn subject_facts(subject: &str) -> Option<(bool, Leg)> {
    let mut words = subject.split_ascii_whitespace();
    let begin = match words.next()? {
        "BEGIN" => true,
        "END" => false,
        _ => return None,
    };
    let leg = match words.next()? {
        "RX" => Leg::Caller,
        "TX" => Leg::Agent,
        _ => return None,
    };
    (words.next()? == "recording" && words.next()? == "of").then_some((begin, leg))
}

/// The `m=audio` port (non-zero, PCMU offered) and the `o=` address.
fn sdp_facts(body: &str) -> Option<(u16, Option<IpAddr>)> {
    let mut port = None;
    let mut origin = None;
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=audio ") {
            let mut fields = media.split_ascii_whitespace();
            let p: u16 = fields.next()?.parse().ok()?;
            let proto = fields.next()?;
            let pcmu = fields.any(|f| f == "0");
            if p != 0 && proto == "RTP/AVP" && pcmu {
                port = Some(p);
            }
        } else if let Some(o) = line.strip_prefix("o=") {
            origin = o
                .split_ascii_whitespace()
                .nth(5)
                .and_then(|a| a.parse().ok());
        }
    }
    Some((port?, origin))
}

/// The response mod_oreka never reads but SIP asks for: it costs one datagram, and it lets a
/// packet trace show that the recorder took the fork.
pub(crate) fn response(
    message: &ForkMessage,
    status: u16,
    reason: &str,
    tag: &str,
    answer: Option<String>,
) -> Vec<u8> {
    let mut out = format!(
        "SIP/2.0 {status} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nServer: switchyard-recorder\r\n",
        message.via, message.from, message.to, message.call_id, message.cseq
    );
    match answer {
        Some(body) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// The SDP answer to a fork: receive-only PCMU at `ip:port`.
pub(crate) fn answer(ip: IpAddr, port: u16, session_id: u64) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=switchyard {session_id} 1 IN {family} {ip}\r\ns=switchyard recorder\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
    )
}

/// Datagrams exactly as mod_oreka.c (FreeSWITCH 1.10.12) prints them, for tests here and in
/// the fake switch's checks: `%s\r\n%s\n` of the headers and the SDP.
pub mod wire {
    /// The INVITE (or, with `begin` false, the BYE) of one direction of `uuid`'s fork.
    /// `local` is FreeSWITCH's address, `server` the recorder's, `port` the RTP port.
    #[allow(clippy::too_many_arguments)]
    pub fn datagram(
        begin: bool,
        rx: bool,
        uuid: &str,
        caller_number: &str,
        caller_name: &str,
        callee: &str,
        local: &str,
        server: &str,
        port: u16,
        extra_headers: &[(&str, &str)],
    ) -> Vec<u8> {
        let method = if begin { "INVITE" } else { "BYE" };
        let dir = if rx { "RX" } else { "TX" };
        let mut sdp = String::new();
        if begin {
            sdp.push_str("v=0\r\n");
            sdp.push_str(&format!("o=freeswitch {uuid} 1 IN IP4 {local}\r\n"));
            sdp.push_str(&format!("c=IN IP4 {server}\r\n"));
            sdp.push_str(&format!("s=Phone Recording ({dir})\r\n"));
            sdp.push_str("i=FreeSWITCH Oreka Recorder (pid=4242)\r\n");
            sdp.push_str(&format!("m=audio {port} RTP/AVP 0\r\n"));
            sdp.push_str("a=rtpmap:0 PCMU/8000\r\n");
        }
        let mut head = String::new();
        head.push_str(&format!("{method} sip:{callee}@{local}:5060 SIP/2.0\r\n"));
        head.push_str(&format!(
            "Via: SIP/2.0/UDP {local}:5061;branch=z9hG4bK-{uuid}\r\n"
        ));
        head.push_str(&format!(
            "From: <sip:{caller_number}@{local}:5061;tag=1>\r\n"
        ));
        head.push_str(&format!("To: <sip:{callee}@{local}:5060>\r\n"));
        head.push_str(&format!("Call-ID: {uuid}\r\n"));
        head.push_str(&format!("CSeq: 1 {method}\r\n"));
        head.push_str(&format!("Contact: sip:freeswitch@{local}:5061\r\n"));
        head.push_str("Max-Forwards: 70\r\n");
        let phase = if begin { "BEGIN" } else { "END" };
        head.push_str(&format!(
            "Subject: {phase} {dir} recording of {caller_name}\r\n"
        ));
        for (name, value) in extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if begin {
            head.push_str("Content-Type: application/sdp\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", sdp.len()));
        format!("{head}\r\n{sdp}\n").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(rx: bool) -> Vec<u8> {
        wire::datagram(
            true,
            rx,
            "6f1c0d3e-0000-4000-8000-000000000001",
            "1000",
            "Alice Caller",
            "Support Line",
            "10.0.0.5",
            "10.0.0.9",
            24_680,
            &[("X-Queue", "support")],
        )
    }

    #[test]
    fn reads_both_directions_of_a_fork_despite_a_name_with_spaces() {
        let rx = parse(&invite(true)).expect("an oreka datagram").unwrap();
        assert!(rx.begin);
        assert_eq!(rx.leg, Leg::Caller);
        assert_eq!(rx.call_id, "6f1c0d3e-0000-4000-8000-000000000001");
        assert_eq!(rx.port, Some(24_680));
        assert_eq!(rx.origin, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(rx.cseq, "1 INVITE");
        let tx = parse(&invite(false)).unwrap().unwrap();
        assert_eq!(tx.leg, Leg::Agent);
        // What a transaction layer keys on is the same for both.
        assert_eq!(
            (rx.via.as_str(), &rx.call_id),
            (tx.via.as_str(), &tx.call_id)
        );
        let bye = wire::datagram(
            false,
            false,
            "u-1",
            "1000",
            "Alice",
            "Bob",
            "10.0.0.5",
            "10.0.0.9",
            0,
            &[],
        );
        let bye = parse(&bye).unwrap().unwrap();
        assert!(!bye.begin);
        assert_eq!((bye.leg, bye.port), (Leg::Agent, None));
    }

    #[test]
    fn other_requests_are_not_forks_and_broken_forks_are_errors() {
        let options = b"OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\nSubject: hello\r\n\r\n";
        assert_eq!(parse(options), None);
        let no_port = String::from_utf8(invite(true))
            .unwrap()
            .replace("m=audio 24680", "m=audio 0");
        assert_eq!(parse(no_port.as_bytes()), Some(Err(())));
        let no_call_id = String::from_utf8(invite(true))
            .unwrap()
            .replace("Call-ID: 6f1c0d3e-0000-4000-8000-000000000001\r\n", "");
        assert_eq!(parse(no_call_id.as_bytes()), Some(Err(())));
        let bye_as_invite = String::from_utf8(invite(true))
            .unwrap()
            .replace("Subject: BEGIN", "Subject: END");
        assert_eq!(parse(bye_as_invite.as_bytes()), Some(Err(())));
        assert_eq!(parse(&[0xff, 0xfe, 0x00]), None);
    }
}
