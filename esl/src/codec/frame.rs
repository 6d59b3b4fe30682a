//! Framing: one header block ended by an empty line, then `Content-Length` bytes of body.
//!
//! The decoder is resumable: it remembers how far it has scanned for the empty line, so bytes
//! arriving one at a time cost O(n) in total, not O(n²). Both bounds are checked before any
//! allocation: a header block may not exceed [`DecoderLimits::max_header_block`] and a body may
//! not exceed [`DecoderLimits::max_content_length`] (16 MiB, FreeSWITCH's own cap).

use bytes::{Buf, Bytes, BytesMut};

use super::event::parse_decimal;
use super::headers::{Headers, SpanList, scan_into};
use super::message::{BodyOnly, Message};
use crate::error::EslError;

/// FreeSWITCH refuses bodies above 16 MiB (`MAX_CONTENT_LENGTH` in mod_event_socket.c).
pub const MAX_CONTENT_LENGTH: usize = 16 * 1024 * 1024;

/// Bounds enforced while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest header block accepted, terminating empty line included. The outbound `connect`
    /// reply carries the whole channel data in its header block and passes 64 KiB with many
    /// variables, hence the generous default of 1 MiB.
    pub max_header_block: usize,
    /// Largest `Content-Length` accepted (at most [`MAX_CONTENT_LENGTH`]).
    pub max_content_length: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_header_block: 1024 * 1024,
            max_content_length: MAX_CONTENT_LENGTH,
        }
    }
}

/// A framed message: its header block and its body, not yet interpreted.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub headers: Headers,
    pub body: Option<Bytes>,
}

#[derive(Debug)]
enum State {
    /// Looking for the empty line; `scanned` bytes are known not to contain it.
    Head { scanned: usize },
    /// Header block parsed; waiting for `len` body bytes.
    Body {
        line: Option<Bytes>,
        headers: Headers,
        len: usize,
    },
    /// Header block of a message made of its body alone read (and dropped); waiting for `len`
    /// body bytes. Only [`FrameDecoder::decode_message`] gets here.
    BodyOnly { kind: BodyOnly, len: usize },
}

/// Which side of the conversation is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Messages from the switch: every line of the block is a header.
    Message,
    /// Commands from a client: the first line is the command; header lines without a colon are
    /// ignored, as FreeSWITCH ignores them.
    Command,
}

/// The sans-IO framer. Feed it a buffer that grows as bytes arrive; it takes whole frames off
/// the front.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: DecoderLimits,
    mode: Mode,
    state: State,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DecoderLimits::default())
    }
}

impl FrameDecoder {
    pub fn new(limits: DecoderLimits) -> Self {
        Self::with_mode(limits, Mode::Message)
    }

    pub(crate) fn with_mode(limits: DecoderLimits, mode: Mode) -> Self {
        FrameDecoder {
            limits: DecoderLimits {
                max_content_length: limits.max_content_length.min(MAX_CONTENT_LENGTH),
                ..limits
            },
            mode,
            state: State::Head { scanned: 0 },
        }
    }

    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Whether a frame has been started but not finished (bytes are buffered or a body is
    /// awaited). A connection that ends now has been cut in the middle of a frame.
    pub fn in_frame(&self, buf: &BytesMut) -> bool {
        matches!(self.state, State::Body { .. } | State::BodyOnly { .. })
            || buf.iter().any(|&b| b != b'\n' && b != b'\r')
    }

    /// Takes the next whole frame off `buf`, or returns `Ok(None)` when more bytes are needed.
    /// After an error the stream is out of sync; the caller must drop the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, EslError> {
        Ok(self.decode_raw(buf)?.map(|(_, frame)| frame))
    }

    /// Like [`decode`](Self::decode), also returning the command line in command mode.
    pub(crate) fn decode_raw(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Option<Bytes>, Frame)>, EslError> {
        loop {
            match &mut self.state {
                State::Head { scanned } => {
                    let Some((head_len, block_len)) = find_head(buf, scanned, &self.limits)? else {
                        return Ok(None);
                    };
                    let mut block = buf.split_to(block_len);
                    let (line, headers) = match self.mode {
                        Mode::Message => {
                            block.truncate(head_len);
                            (None, Headers::parse_block(block.freeze())?)
                        }
                        Mode::Command => {
                            let block = block.freeze();
                            let nl = memchr::memchr(b'\n', &block).unwrap_or(head_len);
                            let rest = block.slice((nl + 1).min(head_len)..head_len);
                            (Some(block.slice(..nl)), Headers::parse_block_lenient(rest))
                        }
                    };
                    let len = body_length(
                        headers.find(b"Content-Length").map(|h| h.raw_value()),
                        &self.limits,
                    )?;
                    if len == 0 {
                        self.state = State::Head { scanned: 0 };
                        let frame = Frame {
                            headers,
                            body: None,
                        };
                        return Ok(Some((line, frame)));
                    }
                    buf.reserve(len.saturating_sub(buf.len()));
                    self.state = State::Body { line, headers, len };
                }
                State::Body { len, .. } => {
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let len = *len;
                    let done = std::mem::replace(&mut self.state, State::Head { scanned: 0 });
                    if let State::Body { line, headers, .. } = done {
                        let body = Some(buf.split_to(len).freeze());
                        return Ok(Some((line, Frame { headers, body })));
                    }
                }
                State::BodyOnly { .. } => {
                    return Err(EslError::Protocol {
                        reason: "a frame decoder was used for both frames and messages".into(),
                    });
                }
            }
        }
    }

    /// Takes the next whole message off `buf` (the [`EslCodec`](super::EslCodec) path): the
    /// same framing, limits and errors as [`decode`](Self::decode) followed by
    /// [`Message::from_frame`], but the outer header block of a message made of its body alone
    /// (every event) is indexed on the stack and dropped, never copied into [`Headers`]; the
    /// block FreeSWITCH writes before every event is recognised without a scan
    /// ([`event_head`]).
    pub(crate) fn decode_message(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Message>, EslError> {
        loop {
            match &mut self.state {
                State::Head { scanned } => {
                    if self.mode != Mode::Message {
                        return Err(EslError::Protocol {
                            reason: "a command decoder cannot read messages".into(),
                        });
                    }
                    if *scanned == 0 {
                        skip_line_ends(buf);
                        if let Some((block_len, len, kind)) = event_head(buf, &self.limits) {
                            buf.advance(block_len);
                            if len == 0 {
                                return kind.message(None).map(Some);
                            }
                            buf.reserve(len.saturating_sub(buf.len()));
                            self.state = State::BodyOnly { kind, len };
                            continue;
                        }
                    }
                    let mut spans = SpanList::new();
                    let (head_len, block_len) =
                        match whole_head(buf, *scanned, &self.limits, &mut spans) {
                            Some(found) => found,
                            None => {
                                // Not all there yet (or not well formed): find the block resumably,
                                // then index it, for the usual errors.
                                spans = SpanList::new();
                                let Some((head_len, block_len)) =
                                    find_head(buf, scanned, &self.limits)?
                                else {
                                    return Ok(None);
                                };
                                scan_into(&buf[..head_len], &mut spans)?;
                                (head_len, block_len)
                            }
                        };
                    let head = &buf[..head_len];
                    let (length, content_type) = spans.length_and_type(head);
                    let len = body_length(length, &self.limits)?;
                    match BodyOnly::of(content_type) {
                        Some(kind) => {
                            buf.advance(block_len);
                            if len == 0 {
                                self.state = State::Head { scanned: 0 };
                                return kind.message(None).map(Some);
                            }
                            self.state = State::BodyOnly { kind, len };
                        }
                        None => {
                            let mut block = buf.split_to(block_len);
                            block.truncate(head_len);
                            let headers = Headers::from_spans(block.freeze(), &spans);
                            if len == 0 {
                                self.state = State::Head { scanned: 0 };
                                let frame = Frame {
                                    headers,
                                    body: None,
                                };
                                return Message::from_frame(frame).map(Some);
                            }
                            self.state = State::Body {
                                line: None,
                                headers,
                                len,
                            };
                        }
                    }
                    buf.reserve(len.saturating_sub(buf.len()));
                }
                State::Body { len, .. } | State::BodyOnly { len, .. } => {
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let len = *len;
                    let body = Some(buf.split_to(len).freeze());
                    match std::mem::replace(&mut self.state, State::Head { scanned: 0 }) {
                        State::Body { headers, .. } => {
                            return Message::from_frame(Frame { headers, body }).map(Some);
                        }
                        State::BodyOnly { kind, .. } => return kind.message(body).map(Some),
                        State::Head { .. } => {}
                    }
                }
            }
        }
    }
}

/// When a new frame starts (line ends between messages already skipped) and its whole header
/// block is in `buf` (the usual case), finds the block and indexes its lines in one scan:
/// returns (length of the header lines, length of the block including the empty line), as
/// [`find_head`] would, with the lines in `spans`. `None` when the block is not all there, is
/// too large, or does not parse: the caller then takes the resumable path, which reports those
/// cases.
fn whole_head(
    buf: &[u8],
    scanned: usize,
    limits: &DecoderLimits,
    spans: &mut SpanList,
) -> Option<(usize, usize)> {
    if scanned != 0 {
        return None;
    }
    let window = &buf[..buf.len().min(limits.max_header_block)];
    let after = scan_into(window, spans).ok()??;
    // The empty line starts after a `\n` (the block cannot start with one: they were skipped),
    // and is `\n` or `\r\n`.
    let head_len = after - 1 - usize::from(window.get(after.checked_sub(2)?) == Some(&b'\r'));
    Some((head_len, after))
}

/// Line ends between messages carry nothing (FreeSWITCH skips them too).
fn skip_line_ends(buf: &mut BytesMut) {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .count();
    buf.advance(skip);
}

/// FreeSWITCH frames every event as `Content-Length: <n>\nContent-Type: <type>\n\n`. When
/// `buf` starts with exactly that, for a message made of its body alone and within the limits,
/// the block needs no scan: returns (length of the block, body length, kind). Anything else
/// (other spellings, more headers, `\r`, a partial block, an error to report) is `None`, and
/// the general path decides, with the same result for the blocks this accepts.
fn event_head(buf: &[u8], limits: &DecoderLimits) -> Option<(usize, usize, BodyOnly)> {
    const LENGTH: &[u8] = b"Content-Length: ";
    const TYPE: &[u8] = b"\nContent-Type: ";
    let rest = buf.strip_prefix(LENGTH)?;
    let digits = rest.iter().take(10).position(|b| !b.is_ascii_digit())?;
    let len = parse_decimal(&rest[..digits])?;
    let rest = rest[digits..].strip_prefix(TYPE)?;
    let end = rest.iter().take(32).position(|&b| b == b'\n')?;
    let kind = BodyOnly::of(Some(&rest[..end]))?;
    if rest.get(end + 1) != Some(&b'\n') {
        return None;
    }
    let block_len = LENGTH.len() + digits + TYPE.len() + end + 2;
    (block_len <= limits.max_header_block && len <= limits.max_content_length)
        .then_some((block_len, len, kind))
}

/// Skips line ends between messages, then finds the empty line that ends the next header block
/// within the limits. Returns (length of the header lines, length of the block including the
/// empty line), or `None` while more bytes are needed.
fn find_head(
    buf: &mut BytesMut,
    scanned: &mut usize,
    limits: &DecoderLimits,
) -> Result<Option<(usize, usize)>, EslError> {
    if *scanned == 0 {
        skip_line_ends(buf);
    }
    let Some((head_len, block_len)) = find_blank_line(buf, scanned) else {
        if buf.len() > limits.max_header_block {
            return Err(EslError::HeaderBlockTooLarge {
                limit: limits.max_header_block,
            });
        }
        return Ok(None);
    };
    if block_len > limits.max_header_block {
        return Err(EslError::HeaderBlockTooLarge {
            limit: limits.max_header_block,
        });
    }
    Ok(Some((head_len, block_len)))
}

/// The body length a `Content-Length` value (if any) announces, within the limits.
fn body_length(value: Option<&[u8]>, limits: &DecoderLimits) -> Result<usize, EslError> {
    match value {
        None => Ok(0),
        Some(v) => parse_decimal(v)
            .filter(|&n| n <= limits.max_content_length)
            .ok_or_else(|| EslError::BadContentLength {
                value: crate::error::excerpt(v),
                max: limits.max_content_length,
            }),
    }
}

/// Finds the empty line that ends a header block. Returns (length of the header lines, length
/// of the block including the empty line). `scanned` is advanced so a later call resumes.
fn find_blank_line(buf: &[u8], scanned: &mut usize) -> Option<(usize, usize)> {
    let mut from = *scanned;
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let nl = from + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl + 1, nl + 2)),
            Some(b'\r') => match buf.get(nl + 2) {
                Some(b'\n') => return Some((nl + 1, nl + 3)),
                Some(_) => from = nl + 1,
                None => {
                    *scanned = nl;
                    return None;
                }
            },
            Some(_) => from = nl + 1,
            None => {
                *scanned = nl;
                return None;
            }
        }
    }
    *scanned = buf.len();
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    fn all(bytes: &[u8]) -> Vec<Frame> {
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn frames_header_only_and_bodied_messages() {
        let f = all(
            b"Content-Type: auth/request\n\nContent-Type: api/response\nContent-Length: 3\n\n+OK",
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].body, None);
        assert_eq!(f[1].body.as_deref(), Some(&b"+OK"[..]));
    }

    #[test]
    fn resumes_byte_by_byte() {
        let wire = b"Content-Type: api/response\nContent-Length: 5\n\nhello\nContent-Type: auth/request\n\n";
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut n = 0;
        for &b in wire {
            buf.extend_from_slice(&[b]);
            while d.decode(&mut buf).unwrap().is_some() {
                n += 1;
            }
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn header_block_over_the_cap_is_an_error_not_a_hang() {
        let mut d = FrameDecoder::new(DecoderLimits {
            max_header_block: 64,
            ..Default::default()
        });
        let mut buf = BytesMut::from(
            &b"X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"[..],
        );
        assert!(matches!(
            d.decode(&mut buf),
            Err(EslError::HeaderBlockTooLarge { limit: 64 })
        ));
    }

    #[test]
    fn content_length_bounds_and_garbage_are_errors() {
        for cl in ["16777217", "-1", "12a", "", "5 5", "99999999999999999999"] {
            let wire = format!("Content-Type: api/response\nContent-Length: {cl}\n\n");
            let mut d = FrameDecoder::default();
            let mut buf = BytesMut::from(wire.as_bytes());
            assert!(
                matches!(d.decode(&mut buf), Err(EslError::BadContentLength { .. })),
                "{cl:?}"
            );
        }
        let wire = "Content-Type: api/response\nContent-Length: 16777216\n\n";
        let mut d = FrameDecoder::default();
        assert!(
            d.decode(&mut BytesMut::from(wire.as_bytes()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn crlf_blank_line_ends_a_block() {
        let f = all(b"Content-Type: auth/request\r\n\r\n");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn tracks_partial_frames() {
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::from(&b"Content-Type: api/response\nContent-Length: 9\n\nabc"[..]);
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(d.in_frame(&buf));
        let mut empty = BytesMut::new();
        assert!(!FrameDecoder::default().in_frame(&empty));
        empty.extend_from_slice(b"\n");
        assert!(!FrameDecoder::default().in_frame(&empty));
    }

    /// The frame path: [`FrameDecoder::decode`] then [`Message::from_frame`], what
    /// [`EslCodec`](super::super::EslCodec) did before it had its own path.
    fn via_frames(
        limits: DecoderLimits,
        wire: &[u8],
        cuts: &[usize],
        messages: bool,
    ) -> (Vec<Message>, Option<String>) {
        let mut d = FrameDecoder::new(limits);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut pos = 0;
        for c in cuts {
            buf.extend_from_slice(&wire[pos..c.max(pos)]);
            pos = pos.max(c);
            loop {
                let next = if messages {
                    d.decode_message(&mut buf)
                } else {
                    d.decode(&mut buf)
                        .and_then(|f| f.map(Message::from_frame).transpose())
                };
                match next {
                    Ok(Some(m)) => out.push(m),
                    Ok(None) => break,
                    Err(e) => return (out, Some(format!("{e:?}"))),
                }
            }
        }
        (out, None)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// The message path decodes exactly what the frame path does (messages, and the same
        /// error at the same point), however the bytes arrive: valid messages of every kind,
        /// CRLF, stray line ends, truncated and malformed header blocks, bad lengths, garbage.
        #[test]
        fn message_path_agrees_with_frame_path(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(vec![
                        &b"Content-Length: 36\nContent-Type: text/event-plain\n\nEvent-Name: HEARTBEAT\nA: b%20c\n\n"[..],
                        &b"Content-Length: 60\nContent-Type: text/event-plain\n\nEvent-Name: BACKGROUND_JOB\nContent-Length: 4\n\n+OK\n\n"[..],
                        &b"Content-Type: text/event-plain\r\nContent-Length: 21\r\n\r\nEvent-Name: X\r\nB:\r\n\r\n"[..],
                        &b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"[..],
                        &b"Content-Type: api/response\nContent-Length: 3\n\n+OK"[..],
                        &b"Content-Type: auth/request\n\n"[..],
                        &b"Content-Type: text/disconnect-notice\nContent-Length: 5\n\nbye\n\n"[..],
                        &b"Content-Type: log/data\nContent-Length: 2\nLog-Level: 7\n\nhi"[..],
                        &b"Content-Type: something/else\nX-Y: %41\n\n"[..],
                        &b"Content-Type: text/event-json\nContent-Length: 27\n\n{\"Event-Name\":\"HEARTBEAT\"}"[..],
                        &b"Content-Type: text/rude-rejection\nContent-Length: 4\n\nnope"[..],
                        &b"content-type: TEXT/EVENT-PLAIN\ncontent-length: 0\n\n"[..],
                        &b"Content-Length: 99999999999\n\n"[..],
                        &b"Content-Length: 20\nContent-Type: text/event-plain\n\nno colon here\n\n\n\n\n\n"[..],
                        &b":empty name\n\n"[..],
                        &b"\n\r\n\n"[..],
                        &b"Content-Type: api/response\nContent-Length: 70\n\n"[..],
                        &b"Content-Length: 0\nContent-Type: text/event-plain\n\n"[..],
                        &b"Content-Length: 15\nContent-Type: text/event-plain\r\n\r\nEvent-Name: X\r\n"[..],
                        &b"Content-Length: 5\nContent-Type: text/event-xml\n\n<bad>"[..],
                        &b"Content-Length: 1234567890\nContent-Type: text/event-plain\n\n"[..],
                        &b"Content-Length: 70\nContent-Type: text/event-plain\n\n"[..],
                        &b"Content-Length: 3\nContent-Type: api/response\n\n+OK"[..],
                        &b"Content-Length: 3\nContent-Type: text/plain\n\nabc"[..],
                        &b"Content-Length:  3\nContent-Type: api/response\n\n+OK"[..],
                        &b"Content-Length: 3\nContent-Type: api/response\nX: y\n\n+OK"[..],
                    ]).prop_map(|p| p.to_vec()),
                    1 => proptest::collection::vec(
                        proptest::prop_oneof![
                            proptest::strategy::Just(b'\n'),
                            proptest::strategy::Just(b':'),
                            proptest::strategy::Just(b'\r'),
                            proptest::num::u8::ANY,
                        ],
                        0..90,
                    ),
                ],
                0..8,
            ),
            cuts in proptest::collection::vec(proptest::num::usize::ANY, 0..6),
            small in proptest::bool::ANY,
        ) {
            let wire = pieces.concat();
            let limits = if small {
                DecoderLimits { max_header_block: 64, max_content_length: 64 }
            } else {
                DecoderLimits::default()
            };
            proptest::prop_assert_eq!(
                via_frames(limits, &wire, &cuts, true),
                via_frames(limits, &wire, &cuts, false)
            );
        }
    }
}
