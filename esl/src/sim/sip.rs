//! The fake switch's SIP user agent client, sans-IO: the messages mod_sofia sends for a
//! recorder leg and the reading of what comes back. Sockets and timing are in `uac`.
//!
//! Shapes follow `eavesdrop-recorder-leg.udp.bin`: an INVITE offering only PCMU and
//! telephone-event (`RTP/AVP 0 101`, ptime 20), an ACK to the 2xx, a BYE with
//! `Reason: Q.850;cause=..`, and 200 OK to a BYE or OPTIONS from the far end. Hand-written
//! rather than ezk-sip: the client side needs four message kinds and one transaction, and the
//! crate the media side uses for its server would add a transport layer we drive ourselves.
//!
//! Never panics on input: a datagram that is not UTF-8, has no status or request line, or
//! lacks the headers we need reads as `None`.

use std::net::{IpAddr, SocketAddr};

use super::channel::q850;

/// Largest datagram we read or expect to send (a UDP datagram's practical bound).
pub const MAX_DATAGRAM: usize = 65_507;
const USER_AGENT: &str = "FreeSWITCH-mod_sofia/1.10.12-release~64bit";
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE";

/// One recorder leg's dialog, from the client side.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// The leg's uuid: it names the Call-ID and the tags, so a run is reproducible.
    pub leg: String,
    pub user: String,
    pub from: String,
    pub remote: SocketAddr,
    pub local_sip: SocketAddr,
    pub local_rtp: SocketAddr,
    pub cseq: u32,
    /// The far end's tag, from its 2xx.
    pub to_tag: Option<String>,
}

/// A message the far end sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Response(Response),
    Request(Request),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub method: String,
    pub cseq: u32,
    pub to_tag: Option<String>,
    /// The SDP answer's audio destination (`c=` address, `m=audio` port).
    pub media: Option<SocketAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Via, From, To, Call-ID and CSeq, copied into the response.
    echo: Vec<(String, String)>,
}

impl Dialog {
    pub fn new(
        leg: &str,
        user: &str,
        from: &str,
        remote: SocketAddr,
        local_sip: SocketAddr,
        local_rtp: SocketAddr,
    ) -> Dialog {
        Dialog {
            leg: leg.to_owned(),
            user: user.to_owned(),
            from: from.to_owned(),
            remote,
            local_sip,
            local_rtp,
            // The capture's first CSeq; the BYE takes the next.
            cseq: 123_712_984,
            to_tag: None,
        }
    }

    fn call_id(&self) -> &str {
        &self.leg
    }

    fn local_tag(&self) -> String {
        tag(&self.leg, 0)
    }

    fn request_uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.remote)
    }

    fn head(&self, method: &str, cseq: u32, branch: &str, with_to_tag: bool) -> String {
        let host = self.local_sip.ip();
        let to_tag = match (&self.to_tag, with_to_tag) {
            (Some(t), true) => format!(";tag={t}"),
            _ => String::new(),
        };
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {via};rport;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{from}@{host}>;tag={ftag}\r\n\
             To: <{uri}>{to_tag}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n",
            uri = self.request_uri(),
            via = self.local_sip,
            from = self.from,
            ftag = self.local_tag(),
            cid = self.call_id(),
        )
    }

    fn invite_branch(&self) -> String {
        tag(&self.leg, 1)
    }

    /// The INVITE with its SDP offer (the same branch on every retransmission).
    pub fn invite(&self) -> String {
        let ip = self.local_rtp.ip();
        let family = ip_family(ip);
        let sdp = format!(
            "v=0\r\n\
             o=FreeSWITCH {s} {v} IN {family} {ip}\r\n\
             s=FreeSWITCH\r\n\
             c=IN {family} {ip}\r\n\
             t=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n",
            s = self.cseq,
            v = self.cseq + 1,
            port = self.local_rtp.port(),
        );
        format!(
            "{head}Contact: <sip:mod_sofia@{local}>\r\n\
             User-Agent: {USER_AGENT}\r\n\
             Allow: {ALLOW}\r\n\
             Supported: timer, path, replaces\r\n\
             Content-Type: application/sdp\r\n\
             Content-Disposition: session\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            head = self.head("INVITE", self.cseq, &self.invite_branch(), false),
            local = self.local_sip,
            len = sdp.len(),
        )
    }

    /// The ACK of a 2xx (a new transaction: its own branch).
    pub fn ack(&self) -> String {
        format!(
            "{}Contact: <sip:mod_sofia@{}>\r\nContent-Length: 0\r\n\r\n",
            self.head("ACK", self.cseq, &tag(&self.leg, 2), true),
            self.local_sip
        )
    }

    /// The ACK of a non-2xx final response (same branch as the INVITE, RFC 3261 17.1.1.3).
    pub fn ack_failure(&self, to_tag: Option<&str>) -> String {
        let mut d = self.clone();
        d.to_tag = to_tag.map(str::to_owned);
        format!(
            "{}Content-Length: 0\r\n\r\n",
            d.head("ACK", self.cseq, &self.invite_branch(), true)
        )
    }

    /// CANCEL of the pending INVITE.
    pub fn cancel(&self) -> String {
        format!(
            "{}Content-Length: 0\r\n\r\n",
            self.head("CANCEL", self.cseq, &self.invite_branch(), false)
        )
    }

    /// BYE of the answered dialog, with the hangup cause as sofia writes it.
    pub fn bye(&self, cause: &str) -> String {
        format!(
            "{head}User-Agent: {USER_AGENT}\r\n\
             Allow: {ALLOW}\r\n\
             Supported: timer, path, replaces\r\n\
             Reason: Q.850;cause={code};text=\"{cause}\"\r\n\
             Content-Length: 0\r\n\r\n",
            head = self.head("BYE", self.cseq + 1, &tag(&self.leg, 3), true),
            code = q850(cause),
        )
    }
}

/// A token derived from the leg's uuid: tags and branches differ per leg and per use, and
/// the same leg gives the same ones.
fn tag(leg: &str, salt: u8) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(salt);
    for b in leg.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:013x}")
}

fn ip_family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IP4" } else { "IP6" }
}

/// Reads one datagram from the far end.
pub fn parse(datagram: &[u8]) -> Option<Incoming> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next()?.trim();
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    let get = |name: &str, short: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(short))
            .map(|(_, v)| *v)
    };
    let (cseq, method) = get("CSeq", "CSeq")?.split_once(' ')?;
    let cseq: u32 = cseq.trim().parse().ok()?;
    if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let status: u16 = rest.split(' ').next()?.parse().ok()?;
        if !(100..700).contains(&status) {
            return None;
        }
        let to_tag = get("To", "t").and_then(|to| {
            to.split(';')
                .find_map(|p| p.trim().strip_prefix("tag="))
                .map(str::to_owned)
        });
        return Some(Incoming::Response(Response {
            status,
            method: method.trim().to_owned(),
            cseq,
            to_tag,
            media: sdp_audio(body),
        }));
    }
    let method = first.split(' ').next()?;
    if !first.ends_with("SIP/2.0") || method.is_empty() {
        return None;
    }
    let echo = headers
        .iter()
        .filter(|(n, _)| {
            ["Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq"]
                .iter()
                .any(|k| n.eq_ignore_ascii_case(k))
        })
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    Some(Incoming::Request(Request {
        method: method.to_owned(),
        echo,
    }))
}

/// The audio destination of an SDP body: the session or media `c=` and the `m=audio` port.
fn sdp_audio(body: &str) -> Option<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for line in body.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix("c=") {
            // `IN IP4 <addr>`: the last word.
            ip = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.parse().ok())
                .or(ip);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        }
    }
    Some(SocketAddr::new(ip?, port.filter(|p| *p != 0)?))
}

/// Our answer to a request of the far end (200 to BYE and OPTIONS, 481/405 otherwise), with
/// the headers a response must echo.
pub fn respond(req: &Request, status: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for (n, v) in &req.echo {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "User-Agent: {USER_AGENT}\r\nContent-Length: 0\r\n\r\n"
    ));
    out
}

/// The hangup cause sofia reports for a final SIP status (mod_sofia's
/// `sofia_glue_sip_cause_to_freeswitch`): what `-ERR <cause>` an originate answers.
pub fn cause_for_status(status: u16) -> &'static str {
    match status {
        200..=299 => "NORMAL_CLEARING",
        401 | 402 | 403 | 407 | 603 | 608 => "CALL_REJECTED",
        404 => "UNALLOCATED_NUMBER",
        485 | 604 => "NO_ROUTE_DESTINATION",
        408 | 504 => "RECOVERY_ON_TIMER_EXPIRE",
        410 => "NUMBER_CHANGED",
        413 | 414 | 416 | 420 | 421 | 423 | 505 | 513 => "INTERWORKING",
        480 => "NO_USER_RESPONSE",
        400 | 481 | 500 | 503 => "NORMAL_TEMPORARY_FAILURE",
        486 | 600 => "USER_BUSY",
        484 => "INVALID_NUMBER_FORMAT",
        488 | 606 => "INCOMPATIBLE_DESTINATION",
        502 => "NETWORK_OUT_OF_ORDER",
        405 => "SERVICE_UNAVAILABLE",
        406 | 415 | 501 => "SERVICE_NOT_IMPLEMENTED",
        482 | 483 => "EXCHANGE_ROUTING_ERROR",
        487 => "ORIGINATOR_CANCEL",
        _ => "NORMAL_UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog() -> Dialog {
        Dialog::new(
            "442aba3e-5b55-4f2e-899d-3235448010fd",
            "rec-7-a",
            "0000000000",
            "127.0.0.1:5090".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:30586".parse().unwrap(),
        )
    }

    #[test]
    fn invite_offers_pcmu_and_telephone_event_at_ptime_20_on_our_rtp_port() {
        let inv = dialog().invite();
        assert!(inv.starts_with("INVITE sip:rec-7-a@127.0.0.1:5090 SIP/2.0\r\n"));
        assert!(inv.contains("m=audio 30586 RTP/AVP 0 101\r\n"));
        assert!(inv.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(inv.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(inv.contains("a=ptime:20\r\n"));
        let (head, body) = inv.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn a_200_with_sdp_yields_status_tag_and_media_address() {
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nTo: <sip:rec@127.0.0.1>;tag=8bcd\r\n\
                  CSeq: 123712984 INVITE\r\nContent-Length: 40\r\n\r\n\
                  v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 50121 RTP/AVP 0\r\n";
        let Some(Incoming::Response(r)) = parse(ok.as_bytes()) else {
            panic!("not a response")
        };
        assert_eq!((r.status, r.method.as_str()), (200, "INVITE"));
        assert_eq!(r.to_tag.as_deref(), Some("8bcd"));
        assert_eq!(r.media, Some("127.0.0.1:50121".parse().unwrap()));
    }

    #[test]
    fn a_bye_from_the_far_end_is_answered_200_echoing_its_headers() {
        let bye = "BYE sip:mod_sofia@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKx\r\n\
                   From: <sip:rec@127.0.0.1>;tag=a\r\nTo: <sip:0@127.0.0.1>;tag=b\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n\r\n";
        let Some(Incoming::Request(r)) = parse(bye.as_bytes()) else {
            panic!("not a request")
        };
        assert_eq!(r.method, "BYE");
        let resp = respond(&r, 200, "OK");
        assert!(resp.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(resp.contains("Call-ID: c1\r\n") && resp.contains("CSeq: 2 BYE\r\n"));
    }

    #[test]
    fn garbage_and_truncated_datagrams_read_as_nothing() {
        for junk in [
            &b""[..],
            b"\xff\xfe",
            b"SIP/2.0 abc",
            b"SIP/2.0 200 OK\r\n\r\n",
            b"HELLO",
        ] {
            assert_eq!(parse(junk), None);
        }
    }

    #[test]
    fn bye_carries_the_q850_reason_and_the_next_cseq() {
        let mut d = dialog();
        d.to_tag = Some("8bcdb054".into());
        let bye = d.bye("NORMAL_CLEARING");
        assert!(bye.contains("Reason: Q.850;cause=16;text=\"NORMAL_CLEARING\"\r\n"));
        assert!(bye.contains("CSeq: 123712985 BYE\r\n"));
        assert!(bye.contains(";tag=8bcdb054\r\n"));
    }

    #[test]
    fn final_statuses_map_to_sofia_causes() {
        assert_eq!(cause_for_status(404), "UNALLOCATED_NUMBER");
        assert_eq!(cause_for_status(486), "USER_BUSY");
        assert_eq!(cause_for_status(503), "NORMAL_TEMPORARY_FAILURE");
        assert_eq!(cause_for_status(488), "INCOMPATIBLE_DESTINATION");
        assert_eq!(cause_for_status(699), "NORMAL_UNSPECIFIED");
    }
}
