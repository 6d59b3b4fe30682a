//! What FreeSWITCH sends: frames interpreted by their `Content-Type`.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::event::{Event, EventFormat};
use super::frame::Frame;
use super::headers::Headers;
use crate::error::EslError;

/// A message from the switch.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// `auth/request`: the first thing an inbound connection receives.
    AuthRequest,
    /// `command/reply`: the answer to every command but `api`.
    CommandReply(Reply),
    /// `api/response`: the output of an `api` command.
    ApiResponse(Bytes),
    /// `text/event-plain`, `text/event-json` or `text/event-xml`.
    Event(Event),
    /// `text/disconnect-notice`: the channel hung up (linger) or the socket is closing.
    DisconnectNotice(DisconnectNotice),
    /// `text/rude-rejection`: refused by the event socket ACL; the socket closes next.
    RudeRejection(Bytes),
    /// `log/data`, after a `log` command.
    LogData(LogData),
    /// A content type this crate does not know; kept whole rather than dropped.
    Other {
        content_type: String,
        headers: Headers,
        body: Option<Bytes>,
    },
}

impl Message {
    /// Interprets a frame. Event bodies are parsed here; a body that does not parse in its
    /// declared format is an error.
    pub fn from_frame(frame: Frame) -> Result<Self, EslError> {
        let Frame { headers, body } = frame;
        let ct = headers.find(b"Content-Type").map(|h| h.raw_value());
        if let Some(kind) = BodyOnly::of(ct) {
            return kind.message(body);
        }
        // Only serialised events are URL-encoded. The outbound `connect` reply is one (the
        // channel data, with `Reply-Text: %2BOK%0A`); every other header block is raw.
        // Asked only for non-event messages, so events (the hot path) skip the lookup.
        let raw = |h: Headers| {
            if h.find(b"Event-Name").is_some() {
                h
            } else {
                h.into_literal()
            }
        };
        Ok(match ct {
            Some(b"command/reply") => Message::CommandReply(Reply {
                headers: raw(headers),
                body,
            }),
            Some(b"text/disconnect-notice") => Message::DisconnectNotice(DisconnectNotice {
                headers: raw(headers),
                body: body.unwrap_or_default(),
            }),
            Some(b"log/data") => Message::LogData(LogData {
                headers: raw(headers),
                body: body.unwrap_or_default(),
            }),
            other => Message::Other {
                content_type: String::from_utf8_lossy(other.unwrap_or_default()).into_owned(),
                headers: raw(headers),
                body,
            },
        })
    }

    /// The `Content-Type` this message travels under.
    pub fn content_type(&self) -> Cow<'_, str> {
        match self {
            Message::AuthRequest => "auth/request".into(),
            Message::CommandReply(_) => "command/reply".into(),
            Message::ApiResponse(_) => "api/response".into(),
            Message::Event(e) => e.format().content_type().into(),
            Message::DisconnectNotice(_) => "text/disconnect-notice".into(),
            Message::RudeRejection(_) => "text/rude-rejection".into(),
            Message::LogData(_) => "log/data".into(),
            Message::Other { content_type, .. } => content_type.as_str().into(),
        }
    }

    /// Writes the message as FreeSWITCH would (the switch side of the protocol: the fake switch
    /// and test peers use this).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::AuthRequest => out.put_slice(b"Content-Type: auth/request\n\n"),
            Message::CommandReply(r) => {
                // Replies built by `Reply::new` start with Content-Type; the outbound connect
                // reply (channel data) carries it near the end, as FreeSWITCH does.
                let has_ct = r.headers.find(b"Content-Type").is_some();
                if !has_ct {
                    out.put_slice(b"Content-Type: command/reply\n");
                }
                let mut w = HeaderWriter(out);
                for h in r.headers.iter() {
                    if !h.name_bytes().eq_ignore_ascii_case(b"Content-Length") {
                        w.raw(h.name_bytes(), h.raw_value());
                    }
                }
                if let Some(b) = &r.body {
                    w.line("Content-Length", b.len().to_string().as_bytes());
                }
                out.put_slice(b"\n");
                if let Some(b) = &r.body {
                    out.put_slice(b);
                }
            }
            Message::ApiResponse(body) => {
                out.put_slice(
                    format!(
                        "Content-Type: api/response\nContent-Length: {}\n\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                out.put_slice(body);
            }
            Message::Event(e) => {
                let body = e.serialize(e.format());
                out.put_slice(
                    format!(
                        "Content-Length: {}\nContent-Type: {}\n\n",
                        body.len(),
                        e.format().content_type()
                    )
                    .as_bytes(),
                );
                out.put_slice(&body);
            }
            Message::DisconnectNotice(n) => {
                let mut h = HeaderWriter(out);
                h.line("Content-Type", b"text/disconnect-notice");
                for hd in n.headers.iter() {
                    let name = hd.name_bytes();
                    if !name.eq_ignore_ascii_case(b"Content-Type")
                        && !name.eq_ignore_ascii_case(b"Content-Length")
                    {
                        h.raw(name, hd.raw_value());
                    }
                }
                h.line("Content-Length", n.body.len().to_string().as_bytes());
                out.put_slice(b"\n");
                out.put_slice(&n.body);
            }
            Message::RudeRejection(body) => {
                out.put_slice(
                    format!(
                        "Content-Type: text/rude-rejection\nContent-Length: {}\n\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                out.put_slice(body);
            }
            Message::LogData(l) => {
                let mut h = HeaderWriter(out);
                h.line("Content-Type", b"log/data");
                h.line("Content-Length", l.body.len().to_string().as_bytes());
                for hd in l.headers.iter() {
                    let name = hd.name_bytes();
                    if !name.eq_ignore_ascii_case(b"Content-Type")
                        && !name.eq_ignore_ascii_case(b"Content-Length")
                    {
                        h.raw(name, hd.raw_value());
                    }
                }
                out.put_slice(b"\n");
                out.put_slice(&l.body);
            }
            Message::Other {
                content_type,
                headers,
                body,
            } => {
                let mut h = HeaderWriter(out);
                h.line("Content-Type", content_type.as_bytes());
                for hd in headers.iter() {
                    let name = hd.name_bytes();
                    if !name.eq_ignore_ascii_case(b"Content-Type")
                        && !name.eq_ignore_ascii_case(b"Content-Length")
                    {
                        h.raw(name, hd.raw_value());
                    }
                }
                if let Some(b) = body {
                    h.line("Content-Length", b.len().to_string().as_bytes());
                }
                out.put_slice(b"\n");
                if let Some(b) = body {
                    out.put_slice(b);
                }
            }
        }
    }
}

/// Content types whose message is made of the body alone: their outer headers are read for
/// `Content-Type` and `Content-Length`, then dropped (the codec need not keep them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyOnly {
    AuthRequest,
    ApiResponse,
    EventPlain,
    EventJson,
    EventXml,
    RudeRejection,
}

impl BodyOnly {
    /// The kind of a message whose `Content-Type` is `ct`, when it is made of the body alone.
    pub(crate) fn of(ct: Option<&[u8]>) -> Option<Self> {
        Some(match ct? {
            b"auth/request" => BodyOnly::AuthRequest,
            b"api/response" => BodyOnly::ApiResponse,
            b"text/event-plain" => BodyOnly::EventPlain,
            b"text/event-json" => BodyOnly::EventJson,
            b"text/event-xml" => BodyOnly::EventXml,
            b"text/rude-rejection" => BodyOnly::RudeRejection,
            _ => return None,
        })
    }

    /// The message, from the frame's body.
    pub(crate) fn message(self, body: Option<Bytes>) -> Result<Message, EslError> {
        Ok(match self {
            BodyOnly::AuthRequest => Message::AuthRequest,
            BodyOnly::ApiResponse => Message::ApiResponse(body.unwrap_or_default()),
            BodyOnly::EventPlain => Message::Event(Event::parse_plain(body.unwrap_or_default())?),
            BodyOnly::EventJson => {
                Message::Event(Event::parse_json_bytes(body.unwrap_or_default())?)
            }
            BodyOnly::EventXml => Message::Event(Event::parse_xml(&body.unwrap_or_default())?),
            BodyOnly::RudeRejection => Message::RudeRejection(body.unwrap_or_default()),
        })
    }
}

struct HeaderWriter<'a>(&'a mut BytesMut);

impl HeaderWriter<'_> {
    fn line(&mut self, name: &str, value: &[u8]) {
        self.raw(name.as_bytes(), value);
    }
    fn raw(&mut self, name: &[u8], value: &[u8]) {
        self.0.put_slice(name);
        self.0.put_slice(b": ");
        self.0.put_slice(value);
        self.0.put_slice(b"\n");
    }
}

/// A `command/reply`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    headers: Headers,
    /// FreeSWITCH's replies carry no body, but a frame that does is kept whole.
    body: Option<Bytes>,
}

impl Reply {
    /// A reply with the given `Reply-Text` (the switch side).
    pub fn new(reply_text: &str) -> Self {
        Reply {
            headers: Headers::from_pairs([
                ("Content-Type", "command/reply"),
                ("Reply-Text", reply_text),
            ]),
            body: None,
        }
    }

    /// A reply with extra headers after `Reply-Text` (e.g. `Job-UUID` for bgapi).
    pub fn with_headers(reply_text: &str, extra: &[(&str, &str)]) -> Self {
        let mut pairs = vec![
            ("Content-Type", "command/reply"),
            ("Reply-Text", reply_text),
        ];
        pairs.extend_from_slice(extra);
        Reply {
            headers: Headers::from_pairs(pairs),
            body: None,
        }
    }

    /// A reply whose header block is given whole.
    pub fn from_headers(headers: Headers) -> Self {
        Reply {
            headers,
            body: None,
        }
    }

    /// The outbound `connect` reply as FreeSWITCH 1.10 writes it: the channel data serialised
    /// like a plain event (values URL-encoded), then `Content-Type: command/reply`,
    /// `Reply-Text: %2BOK%0A`, `Socket-Mode` and `Control` at the end.
    pub fn connect(channel_data: &Event, async_mode: bool, full: bool) -> Self {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
            Vec::with_capacity(channel_data.headers().len() + 4);
        for h in channel_data.headers().iter() {
            let mut v = Vec::with_capacity(h.raw_value().len());
            super::percent::encode_into(&h.value(), &mut v);
            pairs.push((h.name_bytes().to_vec(), v));
        }
        pairs.push((b"Content-Type".to_vec(), b"command/reply".to_vec()));
        pairs.push((b"Reply-Text".to_vec(), b"%2BOK%0A".to_vec()));
        let mode: &[u8] = if async_mode { b"async" } else { b"static" };
        pairs.push((b"Socket-Mode".to_vec(), mode.to_vec()));
        let control: &[u8] = if full { b"full" } else { b"single-channel" };
        pairs.push((b"Control".to_vec(), control.to_vec()));
        Reply {
            headers: Headers::from_encoded_pairs(pairs),
            body: None,
        }
    }

    /// All headers. For the outbound `connect` reply these are the channel data.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body, if the frame had one.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// `Reply-Text`, decoded (`%2BOK%0A` in a connect reply reads `+OK\n`).
    pub fn text(&self) -> Cow<'_, str> {
        self.headers.get_str("Reply-Text").unwrap_or_default()
    }

    /// Whether `Reply-Text` starts with `+OK`.
    pub fn is_ok(&self) -> bool {
        self.text().starts_with("+OK")
    }

    /// `Job-UUID` of a bgapi reply.
    pub fn job_uuid(&self) -> Option<Cow<'_, str>> {
        self.headers.get_str("Job-UUID")
    }

    /// The channel data of an outbound `connect` reply, as an event.
    pub fn into_channel_data(self) -> Event {
        Event::from_parts(EventFormat::Plain, self.headers, None)
    }
}

/// Why the switch sent a disconnect notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The channel hung up; the socket stays open (`linger`) so the last events can be read.
    Linger,
    /// The socket is about to close.
    Disconnect,
}

/// A `text/disconnect-notice`.
#[derive(Clone, Debug, PartialEq)]
pub struct DisconnectNotice {
    headers: Headers,
    body: Bytes,
}

impl DisconnectNotice {
    /// A notice with the given headers, in order (after `Content-Type`), and body. FreeSWITCH
    /// sends `Controlled-Session-UUID`, `Content-Disposition`, `Channel-Name`, `Linger-Time`
    /// on outbound sockets and no headers on inbound ones.
    pub fn new(headers: &[(&str, &str)], body: &[u8]) -> Self {
        DisconnectNotice {
            headers: Headers::from_pairs(headers.iter().copied()),
            body: Bytes::copy_from_slice(body),
        }
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// `Content-Disposition`, when present.
    pub fn disposition(&self) -> Option<Disposition> {
        match self.headers.find(b"Content-Disposition")?.raw_value() {
            b"linger" => Some(Disposition::Linger),
            b"disconnect" => Some(Disposition::Disconnect),
            _ => None,
        }
    }

    /// `Linger-Time` in seconds; -1 means "until the client leaves".
    pub fn linger_time(&self) -> Option<i64> {
        self.headers.get_str("Linger-Time")?.trim().parse().ok()
    }

    /// `Controlled-Session-UUID` (outbound sockets).
    pub fn session_uuid(&self) -> Option<Cow<'_, str>> {
        self.headers.get_str("Controlled-Session-UUID")
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// A `log/data` message.
#[derive(Clone, Debug, PartialEq)]
pub struct LogData {
    headers: Headers,
    body: Bytes,
}

impl LogData {
    pub fn new(level: u8, file: &str, func: &str, line: u32, text: &[u8]) -> Self {
        LogData {
            headers: Headers::from_pairs([
                ("Log-Level", level.to_string().as_str()),
                ("Text-Channel", "3"),
                ("Log-File", file),
                ("Log-Func", func),
                ("Log-Line", line.to_string().as_str()),
                ("User-Data", ""),
            ]),
            body: Bytes::copy_from_slice(text),
        }
    }
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
    /// `Log-Level` (0 console .. 7 debug).
    pub fn level(&self) -> Option<u8> {
        self.headers.get_str("Log-Level")?.trim().parse().ok()
    }
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}
