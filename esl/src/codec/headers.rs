//! Ordered header lists that keep the raw bytes and decode values on access.
//!
//! Decoding every value of every event eagerly costs more than framing does, and most consumers
//! read a handful of headers per event. A [`Headers`] therefore keeps one shared buffer plus the
//! byte spans of each name and value, and percent-decodes a value only when it is read (at most
//! once per read, never twice over the same bytes).

use std::borrow::Cow;

use bytes::Bytes;

use super::percent;
use crate::error::{EslError, excerpt};

/// How a value's bytes are stored in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Percent-encoded, as in plain and XML events and outer headers: decode on read.
    Percent,
    /// Already decoded (JSON events, values set through the API).
    Literal,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    name_start: u32,
    name_len: u32,
    value_start: u32,
    value_len: u32,
    encoding: Encoding,
}

/// An ordered list of headers. Duplicate names are kept, in order; lookups are ASCII
/// case-insensitive like FreeSWITCH's own `switch_event_get_header`, and return the first match.
#[derive(Clone, Default)]
pub struct Headers {
    buf: Bytes,
    spans: Vec<Span>,
}

/// Prefix FreeSWITCH puts on multi-value headers; items are separated by `|:`.
pub const ARRAY_PREFIX: &[u8] = b"ARRAY::";
const ARRAY_SEP: &[u8] = b"|:";

/// FreeSWITCH's spelling of an unset value.
pub const UNDEF: &[u8] = b"_undef_";

impl Headers {
    /// Parses `Name: value` lines (each ended by `\n`, an optional `\r` before it is dropped)
    /// from `block`, which must not contain the terminating empty line. Values are kept
    /// percent-encoded.
    pub(crate) fn parse_block(block: Bytes) -> Result<Self, EslError> {
        let mut spans = Vec::with_capacity(estimate_lines(block.len()));
        let bytes: &[u8] = &block;
        let mut start = 0usize;
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            let mut line_end = end;
            if line_end > start && bytes[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            if line_end > start {
                spans.push(parse_line(bytes, start, line_end)?);
            }
            start = end + 1;
        }
        Ok(Headers { buf: block, spans })
    }

    /// Like [`parse_block`](Self::parse_block), but lines without a colon are skipped instead
    /// of refused (how FreeSWITCH reads commands from clients).
    pub(crate) fn parse_block_lenient(block: Bytes) -> Self {
        let mut spans = Vec::new();
        let bytes: &[u8] = &block;
        let mut start = 0usize;
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            let line_end = if end > start && bytes[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if let Ok(span) = parse_line(bytes, start, line_end) {
                spans.push(span);
            }
            start = end + 1;
        }
        Headers { buf: block, spans }
    }

    /// Number of headers (duplicates counted).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The decoded value of the first header called `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.find(name.as_bytes()).map(|h| h.value())
    }

    /// [`get`](Self::get) as text; invalid UTF-8 is replaced, never an error.
    pub fn get_str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.find(name.as_bytes()).map(|h| h.value_str())
    }

    /// The first header whose name is `prefix` followed by `rest` (`Caller-` + `Caller-ID-Name`
    /// style lookups without building the name).
    pub fn get_prefixed(&self, prefix: &str, rest: &str) -> Option<Cow<'_, str>> {
        let (p, r) = (prefix.as_bytes(), rest.as_bytes());
        self.iter()
            .find(|h| {
                let n = h.name_bytes();
                n.len() == p.len() + r.len()
                    && n[..p.len()].eq_ignore_ascii_case(p)
                    && n[p.len()..].eq_ignore_ascii_case(r)
            })
            .map(|h| h.value_str())
    }

    /// The first header called `name`.
    pub fn find(&self, name: &[u8]) -> Option<Header<'_>> {
        self.iter()
            .find(|h| h.name_bytes().eq_ignore_ascii_case(name))
    }

    /// Headers in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Header<'_>> + '_ {
        self.spans.iter().map(move |span| Header {
            buf: &self.buf,
            span: *span,
        })
    }

    /// Builds headers from already-decoded pairs.
    pub fn from_pairs<'a, I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]> + 'a,
        V: AsRef<[u8]> + 'a,
    {
        let mut b = HeadersBuilder::default();
        for (n, v) in pairs {
            b.push(n.as_ref(), v.as_ref(), Encoding::Literal);
        }
        b.finish()
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|h| (h.name().into_owned(), h.value_str().into_owned())),
            )
            .finish()
    }
}

/// Two header lists are equal when they hold the same names and decoded values in the same
/// order, whatever their wire encoding.
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.name_bytes() == b.name_bytes() && a.value() == b.value())
    }
}

/// One header of a [`Headers`].
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    buf: &'a Bytes,
    span: Span,
}

impl<'a> Header<'a> {
    /// The name as sent (names are ASCII on every FreeSWITCH we know of).
    pub fn name(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.name_bytes())
    }

    /// The name's raw bytes.
    pub fn name_bytes(&self) -> &'a [u8] {
        let s = self.span.name_start as usize;
        &self.buf[s..s + self.span.name_len as usize]
    }

    /// The value's bytes as they were on the wire (still percent-encoded for plain and XML).
    pub fn raw_value(&self) -> &'a [u8] {
        let s = self.span.value_start as usize;
        &self.buf[s..s + self.span.value_len as usize]
    }

    /// The decoded value.
    pub fn value(&self) -> Cow<'a, [u8]> {
        match self.span.encoding {
            Encoding::Percent => percent::decode(self.raw_value()),
            Encoding::Literal => Cow::Borrowed(self.raw_value()),
        }
    }

    /// The decoded value as text, invalid UTF-8 replaced.
    pub fn value_str(&self) -> Cow<'a, str> {
        match self.value() {
            Cow::Borrowed(b) => String::from_utf8_lossy(b),
            Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
        }
    }

    /// Whether the value is FreeSWITCH's `_undef_` (an unset variable).
    pub fn is_undef(&self) -> bool {
        self.raw_value() == UNDEF
    }

    /// Whether the value is a multi-value `ARRAY::a|:b` header.
    pub fn is_array(&self) -> bool {
        self.value().starts_with(ARRAY_PREFIX)
    }

    /// The items of a multi-value header, or the single value otherwise.
    pub fn values(&self) -> Vec<Vec<u8>> {
        split_array(&self.value())
    }
}

/// Splits an `ARRAY::a|:b` value into its items; any other value is one item.
pub fn split_array(value: &[u8]) -> Vec<Vec<u8>> {
    let Some(rest) = value.strip_prefix(ARRAY_PREFIX) else {
        return vec![value.to_vec()];
    };
    let mut out = Vec::new();
    let mut start = 0;
    for i in memchr::memmem::find_iter(rest, ARRAY_SEP) {
        if i >= start {
            out.push(rest[start..i].to_vec());
            start = i + ARRAY_SEP.len();
        }
    }
    out.push(rest[start..].to_vec());
    out
}

/// Joins items into FreeSWITCH's multi-value form.
pub fn join_array<I, V>(items: I) -> Vec<u8>
where
    I: IntoIterator<Item = V>,
    V: AsRef<[u8]>,
{
    let mut out = ARRAY_PREFIX.to_vec();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(ARRAY_SEP);
        }
        out.extend_from_slice(item.as_ref());
    }
    out
}

/// Accumulates headers into one owned buffer (JSON and XML events, events built in code).
#[derive(Default)]
pub(crate) struct HeadersBuilder {
    buf: Vec<u8>,
    spans: Vec<Span>,
}

impl HeadersBuilder {
    pub(crate) fn with_capacity(bytes: usize, headers: usize) -> Self {
        HeadersBuilder {
            buf: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(headers),
        }
    }

    pub(crate) fn push(&mut self, name: &[u8], value: &[u8], encoding: Encoding) {
        let name_start = self.buf.len();
        self.buf.extend_from_slice(name);
        let value_start = self.buf.len();
        self.buf.extend_from_slice(value);
        self.spans.push(Span {
            name_start: to_u32(name_start),
            name_len: to_u32(name.len()),
            value_start: to_u32(value_start),
            value_len: to_u32(value.len()),
            encoding,
        });
    }

    pub(crate) fn finish(self) -> Headers {
        Headers {
            buf: Bytes::from(self.buf),
            spans: self.spans,
        }
    }
}

/// Offsets are u32 to halve the span size; every buffer is bounded by the 16 MiB frame cap, far
/// below u32::MAX, and headers built in code are small.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn estimate_lines(len: usize) -> usize {
    // Captured CHANNEL_* events average ~38 bytes per line.
    (len / 32).clamp(2, 256)
}

fn parse_line(bytes: &[u8], start: usize, end: usize) -> Result<Span, EslError> {
    let line = &bytes[start..end];
    let Some(colon) = memchr::memchr(b':', line) else {
        return Err(EslError::MalformedHeader {
            excerpt: excerpt(line),
        });
    };
    if colon == 0 {
        return Err(EslError::MalformedHeader {
            excerpt: excerpt(line),
        });
    }
    // FreeSWITCH writes exactly one space after the colon; its own reader skips any number.
    let mut v = colon + 1;
    while v < line.len() && line[v] == b' ' {
        v += 1;
    }
    Ok(Span {
        name_start: to_u32(start),
        name_len: to_u32(colon),
        value_start: to_u32(start + v),
        value_len: to_u32(line.len() - v),
        encoding: Encoding::Percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates_and_looks_up_case_insensitively() {
        let h = Headers::parse_block(Bytes::from_static(
            b"Channel-Write-Codec-Name: L16\nchannel-write-codec-name: PCMU\nA: b%20c\n",
        ))
        .unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h.get_str("CHANNEL-WRITE-CODEC-NAME").unwrap(), "L16");
        assert_eq!(h.get_str("a").unwrap(), "b c");
        let names: Vec<_> = h.iter().map(|h| h.name().into_owned()).collect();
        assert_eq!(
            names,
            ["Channel-Write-Codec-Name", "channel-write-codec-name", "A"]
        );
    }

    #[test]
    fn line_without_colon_is_a_typed_error() {
        let err = Headers::parse_block(Bytes::from_static(b"Good: 1\nno colon here\n"));
        assert!(matches!(err, Err(EslError::MalformedHeader { .. })));
    }

    #[test]
    fn crlf_and_empty_values_are_accepted() {
        let h = Headers::parse_block(Bytes::from_static(b"A: 1\r\nB:\r\nC:   spaced\n")).unwrap();
        assert_eq!(h.get_str("A").unwrap(), "1");
        assert_eq!(h.get_str("B").unwrap(), "");
        assert_eq!(h.get_str("C").unwrap(), "spaced");
    }

    #[test]
    fn array_values_split_and_join() {
        let v = join_array(["a", "b|c", ""]);
        assert_eq!(v, b"ARRAY::a|:b|c|:");
        assert_eq!(
            split_array(&v),
            vec![b"a".to_vec(), b"b|c".to_vec(), b"".to_vec()]
        );
        assert_eq!(split_array(b"plain"), vec![b"plain".to_vec()]);
    }

    #[test]
    fn array_header_decodes_percent_before_splitting() {
        let h = Headers::parse_block(Bytes::from_static(b"X: ARRAY%3A%3Aone%7C%3Atwo\n")).unwrap();
        let x = h.find(b"X").unwrap();
        assert!(x.is_array());
        assert_eq!(x.values(), vec![b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn undef_is_recognised() {
        let h = Headers::parse_block(Bytes::from_static(b"variable_x: _undef_\n")).unwrap();
        assert!(h.find(b"variable_x").unwrap().is_undef());
    }
}
