//! One SIP datagram -> the few facts the recorder endpoint acts on, parsed with
//! `ezk-sip-types` (lines, request line, typed Via / CSeq / Call-ID / To). The header values a
//! response must echo (Via, From, To, Call-ID, CSeq: RFC 3261 §8.2.6.2) are kept as received,
//! so a response never re-prints what the peer wrote.

use std::net::SocketAddr;

use bytes::Bytes;
use ezk_sip_types::header::typed::{CSeq, CallID, FromTo, Via};
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::uri::SipUriUserPart;
use ezk_sip_types::{Headers, Method, Name};

/// A request, reduced to what the endpoint needs.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    /// The Request-URI's user part (`rec-<uuid>-a`): what names an expected leg.
    pub user: Option<String>,
    /// Every Via value in order, as received.
    pub vias: Vec<String>,
    /// The top Via's branch: with the method, it names the transaction.
    pub branch: String,
    pub from: String,
    pub to: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// What a datagram turned out to be.
#[derive(Debug)]
pub(crate) enum Incoming {
    Request(Box<Request>),
    /// A response: the endpoint sends no requests, so none is expected.
    Response,
    /// A keep-alive (CRLF) some user agents send over UDP.
    KeepAlive,
}

/// Why a datagram was dropped (counted, never answered: without its headers there is no
/// one to answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    NotUtf8,
    Head,
    StartLine,
    MissingHeader(&'static str),
    BadBody,
}

pub(crate) fn parse(datagram: &[u8]) -> Result<Incoming, Malformed> {
    if datagram.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        return Ok(Incoming::KeepAlive);
    }
    let src = Bytes::copy_from_slice(datagram);
    let mut lines = PullParser::new(&src, 0);
    let first = next_line(&mut lines)?.ok_or(Malformed::Head)?;
    let (rest, start) = MessageLine::parse(&src)(first).map_err(|_| Malformed::StartLine)?;
    if !rest.trim().is_empty() {
        return Err(Malformed::StartLine);
    }
    let request_line = match start {
        MessageLine::Request(line) => line,
        MessageLine::Response(_) => return Ok(Incoming::Response),
    };
    let mut headers = Headers::new();
    while let Some(line) = next_line(&mut lines)? {
        let (_, line) = Line::parse(&src, line).map_err(|_| Malformed::Head)?;
        headers.insert(line.name, line.value);
    }
    let body_start = lines.head_end();
    let body = src.slice(body_start.min(src.len())..);
    let body = match headers.get_raw(&Name::CONTENT_LENGTH).next() {
        Some(len) => {
            let len: usize = len.trim().parse().map_err(|_| Malformed::BadBody)?;
            // UDP carries the whole message: a body shorter than announced was cut off.
            if len > body.len() {
                return Err(Malformed::BadBody);
            }
            body.slice(..len)
        }
        None => body,
    };

    let raw = |name: &Name, what| {
        headers
            .get_raw(name)
            .next()
            .map(|v| v.as_str().to_owned())
            .ok_or(Malformed::MissingHeader(what))
    };
    let vias: Vec<String> = headers
        .get_raw(&Name::VIA)
        .map(|v| v.as_str().to_owned())
        .collect();
    let top_via: Via = headers
        .get_named()
        .map_err(|_| Malformed::MissingHeader("Via"))?;
    let branch = top_via
        .params
        .get_val("branch")
        .map(|b| b.as_str().to_owned())
        .ok_or(Malformed::MissingHeader("Via branch"))?;
    let to: FromTo = headers
        .get(Name::TO)
        .map_err(|_| Malformed::MissingHeader("To"))?;
    let cseq: CSeq = headers
        .get_named()
        .map_err(|_| Malformed::MissingHeader("CSeq"))?;
    let call_id: CallID = headers
        .get_named()
        .map_err(|_| Malformed::MissingHeader("Call-ID"))?;
    let user = match &request_line.uri.user_part {
        SipUriUserPart::Empty => None,
        SipUriUserPart::User(user) => Some(user.as_str().to_owned()),
        SipUriUserPart::UserPw(user_pw) => Some(user_pw.user.as_str().to_owned()),
    };
    Ok(Incoming::Request(Box::new(Request {
        method: request_line.method,
        user,
        vias,
        branch,
        from: raw(&Name::FROM, "From")?,
        to: raw(&Name::TO, "To")?,
        to_tag: to.tag.map(|t| t.as_str().to_owned()),
        call_id: call_id.0.as_str().to_owned(),
        cseq: cseq.cseq,
        cseq_method: cseq.method,
        content_type: headers
            .get_raw(&Name::CONTENT_TYPE)
            .next()
            .map(|v| v.as_str().trim().to_ascii_lowercase()),
        body,
    })))
}

fn next_line<'a>(lines: &mut PullParser<'a>) -> Result<Option<&'a str>, Malformed> {
    match lines.next() {
        None => Ok(None),
        Some(Err(_)) => Err(Malformed::Head),
        Some(Ok(line)) => std::str::from_utf8(line)
            .map(Some)
            .map_err(|_| Malformed::NotUtf8),
    }
}

/// The top Via as a response carries it back over UDP: `rport` filled in and `received` added
/// (RFC 3581), so that the peer can tell where its request came from.
pub(crate) fn response_via(top: &str, source: SocketAddr) -> String {
    // One header line may hold several comma-separated Vias; only the first is ours to edit.
    let (first, others) = match top.split_once(',') {
        Some((first, others)) => (first, Some(others)),
        None => (top, None),
    };
    let mut out = String::with_capacity(top.len() + 40);
    let mut rport = false;
    for (i, part) in first.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let trimmed = part.trim();
        if i > 0 && trimmed.eq_ignore_ascii_case("rport") {
            rport = true;
            out.push_str(&format!("rport={}", source.port()));
        } else if i > 0 && trimmed.to_ascii_lowercase().starts_with("received=") {
            // Replaced below by what we saw.
            out.pop();
        } else {
            out.push_str(trimmed);
        }
    }
    if rport {
        out.push_str(&format!(";received={}", source.ip()));
    }
    if let Some(others) = others {
        out.push(',');
        out.push_str(others);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:rec-a@127.0.0.1:5090 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKopt\r\n\
        From: <sip:fs@127.0.0.1>;tag=f1\r\n\
        To: <sip:rec-a@127.0.0.1:5090>\r\n\
        Call-ID: opt-1\r\n\
        CSeq: 7 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_the_facts_a_response_needs() {
        let Ok(Incoming::Request(request)) = parse(OPTIONS.as_bytes()) else {
            panic!("a request");
        };
        assert_eq!(request.method, Method::OPTIONS);
        assert_eq!(request.user.as_deref(), Some("rec-a"));
        assert_eq!(request.branch, "z9hG4bKopt");
        assert_eq!(request.call_id, "opt-1");
        assert_eq!((request.cseq, &request.cseq_method), (7, &Method::OPTIONS));
        assert_eq!(request.to_tag, None);
        assert!(request.body.is_empty());
    }

    #[test]
    fn a_request_without_call_id_or_with_a_short_body_is_malformed() {
        let no_call_id = OPTIONS.replace("Call-ID: opt-1\r\n", "");
        assert_eq!(
            parse(no_call_id.as_bytes()).err(),
            Some(Malformed::MissingHeader("Call-ID"))
        );
        let short = OPTIONS.replace("Content-Length: 0", "Content-Length: 10");
        assert_eq!(parse(short.as_bytes()).err(), Some(Malformed::BadBody));
    }

    #[test]
    fn response_via_fills_rport_and_adds_received() {
        let source: SocketAddr = "10.0.0.7:5062".parse().unwrap();
        assert_eq!(
            response_via("SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKx", source),
            "SIP/2.0/UDP 127.0.0.1;rport=5062;branch=z9hG4bKx;received=10.0.0.7"
        );
        assert_eq!(
            response_via("SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKx", source),
            "SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKx"
        );
    }
}
