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
pub(crate) struct Span {
    name_start: u32,
    name_len: u32,
    value_start: u32,
    value_len: u32,
    encoding: Encoding,
}

impl Span {
    const EMPTY: Span = Span {
        name_start: 0,
        name_len: 0,
        value_start: 0,
        value_len: 0,
        encoding: Encoding::Percent,
    };

    /// The name's bytes in `buf` (`None` if out of it, which no constructor allows).
    #[inline]
    fn name_in<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        let s = self.name_start as usize;
        buf.get(s..s + self.name_len as usize)
    }

    /// The raw value in `buf`.
    #[inline]
    fn value_in<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let s = self.value_start as usize;
        buf.get(s..s + self.value_len as usize).unwrap_or_default()
    }
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
        let (headers, _) = Self::parse_until_blank(block)?;
        Ok(headers)
    }

    /// Parses header lines up to the first empty line (or the end). Returns the headers and
    /// the offset just past the empty line, when there is one.
    ///
    /// This is the hot path of event decoding (a CHANNEL_* event is ~70 lines in ~2.4 KB); see
    /// [`scan`] for how it works.
    pub(crate) fn parse_until_blank(block: Bytes) -> Result<(Self, Option<usize>), EslError> {
        let mut spans = Vec::with_capacity(estimate_lines(block.len()));
        let after = scan_block_into(&block, &mut spans)?;
        Ok((Headers { buf: block, spans }, after))
    }

    /// Headers over `buf` from spans [`scan_into`] found in it.
    pub(crate) fn from_spans(buf: Bytes, spans: &SpanList) -> Self {
        Headers {
            buf,
            spans: spans.to_vec(),
        }
    }

    /// The buffer the spans index (the whole block that was parsed).
    pub(crate) fn buf(&self) -> &Bytes {
        &self.buf
    }

    /// Like [`parse_block`](Self::parse_block), but lines without a colon are skipped instead
    /// of refused, and values are taken as sent (how FreeSWITCH reads commands from clients:
    /// it never URL-decodes them).
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
                spans.push(Span {
                    encoding: Encoding::Literal,
                    ..span
                });
            }
            start = end + 1;
        }
        Headers { buf: block, spans }
    }

    /// The same headers with their values taken as sent, not percent-decoded. FreeSWITCH
    /// URL-encodes only serialised events; the headers of replies, notices and log data are
    /// written raw, so decoding them would turn a literal `%41` in a reply into `A`.
    pub(crate) fn into_literal(mut self) -> Self {
        for span in &mut self.spans {
            span.encoding = Encoding::Literal;
        }
        self
    }

    /// Builds headers from pairs whose values are already percent-encoded (read back decoded).
    pub fn from_encoded_pairs<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        Self::build(pairs, Encoding::Percent)
    }

    fn build<I, N, V>(pairs: I, encoding: Encoding) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut b = HeadersBuilder::default();
        for (n, v) in pairs {
            b.push(n.as_ref(), v.as_ref(), encoding);
        }
        b.finish()
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
        // Lengths first: most names are ruled out without touching the buffer.
        let span = self.spans.iter().find(|s| {
            s.name_len as usize == name.len()
                && s.name_in(&self.buf).is_some_and(|n| eq_name(n, name))
        })?;
        Some(Header {
            buf: &self.buf,
            span: *span,
        })
    }

    /// Headers in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Header<'_>> + '_ {
        self.spans.iter().map(move |span| Header {
            buf: &self.buf,
            span: *span,
        })
    }

    /// Builds headers from already-decoded pairs.
    pub fn from_pairs<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        Self::build(pairs, Encoding::Literal)
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
        // `str::from_utf8` validates ASCII a word at a time; the lossy conversion walks
        // chunks, which cost more on the (all-ASCII) values FreeSWITCH sends.
        match self.value() {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(b),
            },
            Cow::Owned(v) => match String::from_utf8(v) {
                Ok(s) => Cow::Owned(s),
                Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            },
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

/// Spans over a buffer that already holds the names and values, taken literally (the JSON fast
/// path indexes the received bytes instead of copying them).
pub(crate) struct SpansOver {
    spans: Vec<Span>,
}

impl SpansOver {
    pub(crate) fn with_capacity(n: usize) -> Self {
        SpansOver {
            spans: Vec::with_capacity(n),
        }
    }

    /// Adds a header whose name and value are the byte ranges `name` and `value`.
    pub(crate) fn push_literal(&mut self, name: (usize, usize), value: (usize, usize)) {
        self.spans.push(Span {
            name_start: to_u32(name.0),
            name_len: to_u32(name.1 - name.0),
            value_start: to_u32(value.0),
            value_len: to_u32(value.1 - value.0),
            encoding: Encoding::Literal,
        });
    }

    /// The headers over `buf`, which the ranges index.
    pub(crate) fn finish(self, buf: Bytes) -> Headers {
        Headers {
            buf,
            spans: self.spans,
        }
    }
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

/// The span of a `Name: value` line whose colon is at `colon`; spaces after the colon are
/// skipped (FreeSWITCH writes one; its own reader skips any number). Offsets fit in u32:
/// every caller's buffer is checked against [`MAX_SPAN_BUFFER`] first.
#[inline(always)]
fn span(bytes: &[u8], start: usize, colon: usize, end: usize) -> Span {
    let mut v = colon + 1;
    if v < end && bytes[v] == b' ' {
        v += 1;
        while v < end && bytes[v] == b' ' {
            v += 1;
        }
    }
    percent_span(start, colon, v, end)
}

/// A header line's span: name `start..colon`, value `v..end`, still percent-encoded.
#[inline(always)]
fn percent_span(start: usize, colon: usize, v: usize, end: usize) -> Span {
    Span {
        name_start: start as u32,
        name_len: (colon - start) as u32,
        value_start: v as u32,
        value_len: (end - v) as u32,
        encoding: Encoding::Percent,
    }
}

/// Scans `Name: value` lines into `spans` up to the first empty line (returning the offset just
/// past it) or the end of `bytes` (returning `None`).
///
/// The buffer is read 64 bytes at a time. [`masks::block`] marks the block's `:` and `\n`
/// bytes in two bitmasks; from them, with no branch per line:
/// - `starts`: the first byte of every line (one past each `\n`, carried across blocks);
/// - `colons - starts` (one 64-bit subtraction, its borrow carried into the next block): each
///   line start borrows from the first colon at or after it, so `colons & !diff` is exactly the
///   first colon of every line, and `diff & !colons` marks every byte from a line start up to
///   its first colon (the name);
/// - a name that contains a `\n` is a line without a colon: either the empty line that ends the
///   block, or a malformed line; a first colon at a line start is an empty name. Such a block
///   (once per message, for the final empty line) goes to [`Walk::bad_block`]: the lines before
///   the first bad one are taken as usual, then the bad line is the empty line or is left to
///   [`scan_lines`], which reports it.
///
/// Otherwise first colons and line ends alternate, so the walk over the block's line ends
/// ([`Walk::lines`]) takes each line's colon off the first-colon mask in step, with no search.
/// A last line without its `\n` is left to [`scan_lines`] too.
pub(crate) fn scan_into<S: SpanSink>(
    bytes: &[u8],
    spans: &mut S,
) -> Result<Option<usize>, EslError> {
    if bytes.len() > MAX_SPAN_BUFFER {
        return Err(EslError::HeaderBlockTooLarge {
            limit: MAX_SPAN_BUFFER,
        });
    }
    scan::<S, true>(bytes, spans)
}

/// [`scan_into`] for a buffer that is all header block (and maybe a body): FreeSWITCH never
/// writes `\r`, and a buffer without one (one memchr to know) is scanned without looking
/// for `\r` before every line end.
pub(crate) fn scan_block_into<S: SpanSink>(
    bytes: &[u8],
    spans: &mut S,
) -> Result<Option<usize>, EslError> {
    if bytes.len() > MAX_SPAN_BUFFER {
        return Err(EslError::HeaderBlockTooLarge {
            limit: MAX_SPAN_BUFFER,
        });
    }
    match memchr::memchr(b'\r', bytes) {
        None => scan::<S, false>(bytes, spans),
        Some(_) => scan::<S, true>(bytes, spans),
    }
}

/// `CR`: whether `bytes` may hold a `\r` (to drop before line ends).
// Kept out of line: inlined into its callers, its loop state no longer fits in registers.
#[inline(never)]
fn scan<S: SpanSink, const CR: bool>(
    bytes: &[u8],
    spans: &mut S,
) -> Result<Option<usize>, EslError> {
    let (blocks, rest) = bytes.as_chunks::<64>();
    let mut walk = Walk {
        base: 0,
        start_carry: 1,
        borrow: 0,
        line_start: 0,
        pending: NO_COLON,
    };
    for blk in blocks {
        let (colons, newlines) = masks::block(blk);
        if !walk.block::<S, CR>(bytes, colons, newlines, spans) {
            return walk.bad_block(bytes, colons, newlines, spans);
        }
    }
    let (colons, newlines) = masks::tail(bytes, rest.len());
    if !walk.block::<S, CR>(bytes, colons, newlines, spans) {
        return walk.bad_block(bytes, colons, newlines, spans);
    }
    scan_lines(bytes, walk.line_start, spans)
}

/// `Walk::pending` when no earlier block holds the colon of the line being read.
const NO_COLON: usize = usize::MAX;

/// The state [`scan`] carries from block to block.
struct Walk {
    /// Offset of the block being read.
    base: usize,
    /// Bit 0 of the block starts a line (the previous block ended with `\n`).
    start_carry: u64,
    /// The line running into the block has not reached its colon yet.
    borrow: u64,
    /// Start of the line being read.
    line_start: usize,
    /// The colon of the line being read when an earlier block held it, else [`NO_COLON`].
    pending: usize,
}

impl Walk {
    /// First colons of the block's lines, and the bits that make a block bad: line ends
    /// inside a name (lines without a colon, empty lines) and names that are empty. Also
    /// returns the borrow out of the block.
    #[inline(always)]
    fn first_colons(&self, colons: u64, newlines: u64) -> (u64, u64, u64, bool) {
        let starts = (newlines << 1) | self.start_carry;
        let (diff, out) = colons.overflowing_sub(starts | self.borrow);
        let first = colons & !diff;
        (first, diff & !colons & newlines, first & starts, out)
    }

    /// Takes the lines of a good block and moves on to the next block; `false` (and nothing
    /// done) for a bad one.
    #[inline(always)]
    fn block<S: SpanSink, const CR: bool>(
        &mut self,
        bytes: &[u8],
        colons: u64,
        newlines: u64,
        spans: &mut S,
    ) -> bool {
        let (first, bad_ends, bad_starts, out) = self.first_colons(colons, newlines);
        if bad_ends | bad_starts != 0 {
            return false;
        }
        self.start_carry = newlines >> 63;
        self.borrow = u64::from(out);
        self.lines::<S, CR>(bytes, newlines, first, spans);
        self.base += 64;
        true
    }

    /// The block holding the first bad line: the lines before it are good; the bad line is
    /// the empty line that ends the block (once per message), or a malformed one.
    #[cold]
    #[inline(never)]
    fn bad_block<S: SpanSink>(
        &mut self,
        bytes: &[u8],
        colons: u64,
        newlines: u64,
        spans: &mut S,
    ) -> Result<Option<usize>, EslError> {
        let base = self.base;
        let (first, bad_ends, bad_starts, _) = self.first_colons(colons, newlines);
        let from_end = match bad_ends {
            0 => usize::MAX,
            m => {
                let before = newlines & ((1u64 << m.trailing_zeros()) - 1);
                match before {
                    0 => self.line_start,
                    b => base + 64 - b.leading_zeros() as usize,
                }
            }
        };
        let from_start = match bad_starts {
            0 => usize::MAX,
            m => base + m.trailing_zeros() as usize,
        };
        let cut = from_end.min(from_start);
        let good = match cut.saturating_sub(base) {
            0 => 0,
            n => newlines & ((1u64 << n) - 1),
        };
        self.lines::<S, true>(bytes, good, first, spans);
        let at = self.line_start;
        match bytes.get(at..) {
            Some([b'\n', ..]) => Ok(Some(at + 1)),
            Some([b'\r', b'\n', ..]) => Ok(Some(at + 2)),
            _ => scan_lines(bytes, at, spans),
        }
    }

    /// Turns the lines ending at the `newlines` of the block into spans. `first` holds the
    /// first colon of each line, in step with the line ends (a line whose colon an earlier
    /// block held has it in `pending`).
    #[inline(always)]
    fn lines<S: SpanSink, const CR: bool>(
        &mut self,
        bytes: &[u8],
        mut newlines: u64,
        mut first: u64,
        spans: &mut S,
    ) {
        let base = self.base;
        if newlines != 0 {
            // The first line ending here may have met its colon in an earlier block.
            let nl = base + newlines.trailing_zeros() as usize;
            newlines &= newlines.wrapping_sub(1);
            let colon = if self.pending != NO_COLON {
                self.pending
            } else {
                let here = base + first.trailing_zeros() as usize;
                first &= first.wrapping_sub(1);
                here
            };
            spans.push_span(line_span::<CR>(bytes, self.line_start, colon, nl));
            self.line_start = nl + 1;
            while newlines != 0 {
                let nl = base + newlines.trailing_zeros() as usize;
                newlines &= newlines.wrapping_sub(1);
                let colon = base + first.trailing_zeros() as usize;
                first &= first.wrapping_sub(1);
                spans.push_span(line_span::<CR>(bytes, self.line_start, colon, nl));
                self.line_start = nl + 1;
            }
            self.pending = NO_COLON;
        }
        // A colon left over belongs to a line that ends in a later block.
        if first != 0 {
            self.pending = base + first.trailing_zeros() as usize;
        }
    }
}

/// The span of a line whose first colon is at `colon` and whose `\n` is at `nl`, where
/// `start <= colon < nl < bytes.len()`: every read below is in bounds, and `v <= end`.
#[inline(always)]
fn line_span<const CR: bool>(bytes: &[u8], start: usize, colon: usize, nl: usize) -> Span {
    let end = match CR {
        true => nl - usize::from(bytes[nl - 1] == b'\r'),
        false => nl,
    };
    let mut v = colon + 1;
    v += usize::from(bytes[v] == b' ');
    if bytes[v] == b' ' {
        while v < end && bytes[v] == b' ' {
            v += 1;
        }
    }
    percent_span(start, colon, v, end)
}

/// Line by line from `pos`: the tail of [`scan`] (the empty line, a malformed line, a last line
/// without its `\n`), and the reference it is tested against.
#[cold]
fn scan_lines<S: SpanSink>(
    bytes: &[u8],
    mut pos: usize,
    spans: &mut S,
) -> Result<Option<usize>, EslError> {
    while pos < bytes.len() {
        let nl = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let end = if nl > pos && bytes[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if end == pos {
            // An empty line ends the block; an empty fragment at the very end is nothing.
            return Ok((nl < bytes.len()).then_some(nl + 1));
        }
        match memchr::memchr(b':', &bytes[pos..end]) {
            Some(c) if c > 0 => spans.push_span(span(bytes, pos, pos + c, end)),
            _ => return Err(malformed(bytes, pos, end)),
        }
        pos = nl + 1;
    }
    Ok(None)
}

/// Where [`scan_into`] puts the spans it finds.
pub(crate) trait SpanSink {
    fn push_span(&mut self, span: Span);
}

impl SpanSink for Vec<Span> {
    #[inline(always)]
    fn push_span(&mut self, span: Span) {
        self.push(span);
    }
}

/// A few spans on the stack, more on the heap: the outer header block of a message (two lines
/// for an event, whose outer headers are dropped once read) costs no allocation.
pub(crate) struct SpanList {
    inline: [Span; SpanList::INLINE],
    len: usize,
    more: Vec<Span>,
}

impl SpanList {
    const INLINE: usize = 6;

    pub(crate) fn new() -> Self {
        SpanList {
            inline: [Span::EMPTY; Self::INLINE],
            len: 0,
            more: Vec::new(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Span> {
        self.inline[..self.len.min(Self::INLINE)]
            .iter()
            .chain(self.more.iter())
    }

    fn to_vec(&self) -> Vec<Span> {
        let mut v = Vec::with_capacity(self.len);
        v.extend(self.iter().copied());
        v
    }

    /// The raw values of the first `Content-Length` and the first `Content-Type` (names
    /// ASCII case-insensitive) in `buf`, the buffer the spans were found in: one pass.
    pub(crate) fn length_and_type<'a>(
        &self,
        buf: &'a [u8],
    ) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
        const LENGTH: &[u8] = b"Content-Length";
        const TYPE: &[u8] = b"Content-Type";
        let (mut length, mut kind) = (None, None);
        for s in self.iter() {
            let wanted = match s.name_len as usize {
                14 if length.is_none() => (LENGTH, &mut length),
                12 if kind.is_none() => (TYPE, &mut kind),
                _ => continue,
            };
            if s.name_in(buf).is_some_and(|n| eq_name(n, wanted.0)) {
                *wanted.1 = Some(s.value_in(buf));
            }
        }
        (length, kind)
    }
}

/// ASCII case-insensitive name comparison; names of 8 to 16 bytes (most of them) eight bytes
/// at a time.
#[inline(always)]
fn eq_name(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match (a.first_chunk::<8>(), a.last_chunk::<8>()) {
        (Some(a0), Some(a1)) if a.len() <= 16 => {
            match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
                // The exact spelling (what FreeSWITCH sends) first.
                (Some(b0), Some(b1)) => {
                    (a0 == b0 && a1 == b1) || (lower8(a0) == lower8(b0) && lower8(a1) == lower8(b1))
                }
                _ => false,
            }
        }
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Eight bytes as a word with `A`..=`Z` turned into `a`..=`z` (other bytes, non-ASCII ones
/// included, unchanged), as `u8::to_ascii_lowercase` does byte by byte.
#[inline(always)]
fn lower8(w: &[u8; 8]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(*w);
    let low = x & LOW7;
    // High bit of each byte: its low seven bits are >= 'A', and > 'Z'. No carry crosses a
    // byte: each lane adds at most 0x7f + 0x3f.
    let from_a = low + 0x0101_0101_0101_0101 * (0x80 - b'A' as u64);
    let past_z = low + 0x0101_0101_0101_0101 * (0x80 - b'Z' as u64 - 1);
    let upper = from_a & !past_z & !x & HIGH;
    x | (upper >> 2)
}

impl SpanSink for SpanList {
    #[inline(always)]
    fn push_span(&mut self, span: Span) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = span,
            None => self.more.push(span),
        }
        self.len += 1;
    }
}

/// Largest buffer whose offsets a [`Span`] can hold. Decoded blocks are far smaller (16 MiB
/// bodies, a configurable header cap); this only guards the conversions above.
const MAX_SPAN_BUFFER: usize = u32::MAX as usize;

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
const COLONS: u64 = 0x0101_0101_0101_0101 * b':' as u64;

/// The high bit of each byte of the result is set exactly where that byte of `x` is zero.
/// (The add cannot carry across bytes: each lane is at most 0x7f + 0x7f.)
#[inline(always)]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Bitmasks of the `:` and `\n` bytes of 64-byte blocks (bit i = byte i).
mod masks {
    /// (colons, newlines) of a whole block, 32 bytes at a time, in builds for CPUs with AVX2
    /// (`-C target-cpu=x86-64-v3` or `native`): half the compares and mask moves of SSE2.
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    #[inline(always)]
    pub(super) fn block(b: &[u8; 64]) -> (u64, u64) {
        use safe_arch::{cmp_eq_mask_i8_m256i, m256i, move_mask_i8_m256i, set_splat_i8_m256i};
        let colon = set_splat_i8_m256i(b':' as i8);
        let newline = set_splat_i8_m256i(b'\n' as i8);
        let (halves, _) = b.as_chunks::<32>();
        let (mut c, mut n) = (0u64, 0u64);
        for (k, half) in halves.iter().enumerate() {
            let v = m256i::from(*half);
            let shift = 32 * k as u32;
            c |= u64::from(move_mask_i8_m256i(cmp_eq_mask_i8_m256i(v, colon)) as u32) << shift;
            n |= u64::from(move_mask_i8_m256i(cmp_eq_mask_i8_m256i(v, newline)) as u32) << shift;
        }
        (c, n)
    }

    /// (colons, newlines) of a whole block: SSE2, which every x86_64 has.
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    #[inline(always)]
    pub(super) fn block(b: &[u8; 64]) -> (u64, u64) {
        use safe_arch::{
            cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        };
        let colon = set_splat_i8_m128i(b':' as i8);
        let newline = set_splat_i8_m128i(b'\n' as i8);
        let (lanes, _) = b.as_chunks::<16>();
        let (mut c, mut n) = (0u64, 0u64);
        for (k, lane) in lanes.iter().enumerate() {
            let v = load_unaligned_m128i(lane);
            let shift = 16 * k as u32;
            c |= u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, colon)) as u16) << shift;
            n |= u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, newline)) as u16) << shift;
        }
        (c, n)
    }

    /// (colons, newlines) of a whole block.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub(super) fn block(b: &[u8; 64]) -> (u64, u64) {
        block_swar(b)
    }

    /// (colons, newlines) of a whole block, eight bytes at a time (SWAR), where SSE2 is not a
    /// given. Compiled everywhere so tests prove it equal to the SSE2 version.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    #[inline(always)]
    pub(super) fn block_swar(b: &[u8; 64]) -> (u64, u64) {
        const NEWLINES: u64 = 0x0101_0101_0101_0101 * b'\n' as u64;
        let (words, _) = b.as_chunks::<8>();
        let (mut c, mut n) = (0u64, 0u64);
        for (k, w) in words.iter().enumerate() {
            let w = u64::from_le_bytes(*w);
            c |= pack(super::zero_bytes(w ^ super::COLONS)) << (8 * k);
            n |= pack(super::zero_bytes(w ^ NEWLINES)) << (8 * k);
        }
        (c, n)
    }

    /// Gathers the high bit of each byte into the low eight bits (byte i -> bit i).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    #[inline(always)]
    fn pack(high_bits: u64) -> u64 {
        ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) & 0xff
    }

    /// (colons, newlines) of the last `n` (< 64) bytes of `bytes`, as if padded with zero
    /// bytes (neither `:` nor `\n`) into a whole block. When `bytes` holds 64 bytes or more,
    /// the last 64 are read and the masks shifted; shorter buffers (every outer header block of
    /// a message, ~50 bytes) are copied into a zeroed block.
    #[inline(always)]
    pub(super) fn tail(bytes: &[u8], n: usize) -> (u64, u64) {
        if n == 0 {
            return (0, 0);
        }
        match bytes.last_chunk::<64>() {
            Some(last) => {
                let (c, nl) = block(last);
                (c >> (64 - n), nl >> (64 - n))
            }
            None => {
                let mut padded = [0u8; 64];
                let n = bytes.len().min(64);
                padded[..n].copy_from_slice(&bytes[..n]);
                block(&padded)
            }
        }
    }

    /// The obvious byte-by-byte masks, for tests.
    #[cfg(test)]
    pub(super) fn scalar(bytes: &[u8]) -> (u64, u64) {
        let (mut c, mut n) = (0u64, 0u64);
        for (i, &b) in bytes.iter().enumerate().take(64) {
            c |= u64::from(b == b':') << i;
            n |= u64::from(b == b'\n') << i;
        }
        (c, n)
    }
}

#[cold]
fn malformed(bytes: &[u8], start: usize, end: usize) -> EslError {
    EslError::MalformedHeader {
        excerpt: excerpt(&bytes[start..end.max(start)]),
    }
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

    /// Parsed (name, raw value) pairs and the offset after the empty line, or `None` on error.
    type Parsed = Option<(Vec<(Vec<u8>, Vec<u8>)>, Option<usize>)>;

    /// The obvious line-by-line parser the SWAR scanner must agree with.
    fn reference(bytes: &[u8]) -> Parsed {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let nl = bytes[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| pos + i);
            let mut line = &bytes[pos..nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                // An empty line ends the block; an empty fragment at the very end is nothing.
                return Some((out, (nl < bytes.len()).then_some(nl + 1)));
            }
            let c = line.iter().position(|&b| b == b':')?;
            if c == 0 {
                return None;
            }
            let value = &line[c + 1..];
            let skip = value.iter().take_while(|&&b| b == b' ').count();
            out.push((line[..c].to_vec(), value[skip..].to_vec()));
            pos = nl + 1;
        }
        Some((out, None))
    }

    fn scanned(bytes: &[u8]) -> Parsed {
        let (h, after) = Headers::parse_until_blank(Bytes::copy_from_slice(bytes)).ok()?;
        Some((
            h.iter()
                .map(|h| (h.name_bytes().to_vec(), h.raw_value().to_vec()))
                .collect(),
            after,
        ))
    }

    #[test]
    fn scanner_handles_separators_at_every_word_position() {
        for pad in 0..17 {
            let name = "N".repeat(pad + 1);
            let text = format!("{name}: a:b\r\nX:{}\n\nbody: not a header", " ".repeat(pad));
            assert_eq!(
                scanned(text.as_bytes()),
                reference(text.as_bytes()),
                "{text:?}"
            );
        }
        assert_eq!(scanned(b"A: 1\nB: 2"), reference(b"A: 1\nB: 2"));
        assert!(scanned(b":x\n").is_none());
        assert!(scanned(b"A: 1\nnocolon").is_none());
    }

    proptest::proptest! {
        #[test]
        fn every_block_mask_implementation_agrees(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::num::u8::ANY,
                proptest::strategy::Just(b':'),
                proptest::strategy::Just(b'\n'),
            ],
            64,
        )) {
            let block: [u8; 64] = bytes.as_slice().try_into().unwrap();
            let expected = masks::scalar(&bytes);
            proptest::prop_assert_eq!(masks::block(&block), expected);
            proptest::prop_assert_eq!(masks::block_swar(&block), expected);
            for cut in [0, 1, 17, 40, 63] {
                proptest::prop_assert_eq!(masks::tail(&bytes[..cut], cut), masks::scalar(&bytes[..cut]));
                // The last `cut` bytes of a longer buffer.
                let from = 64 - cut;
                proptest::prop_assert_eq!(masks::tail(&bytes, cut), masks::scalar(&bytes[from..]));
            }
        }

        #[test]
        fn scanner_agrees_with_line_by_line_reference(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::num::u8::ANY,
                    2 => proptest::strategy::Just(b':'),
                    2 => proptest::strategy::Just(b'\n'),
                    1 => proptest::strategy::Just(b'\r'),
                    1 => proptest::strategy::Just(b' '),
                ],
                0..200,
            )
        ) {
            proptest::prop_assert_eq!(scanned(&bytes), reference(&bytes));
        }
    }

    /// One header-ish line for the structured scanner test: name, separator, value, line end.
    fn line_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let text = |max| {
            proptest::collection::vec(
                prop_oneof![
                    8 => b'a'..=b'z',
                    1 => Just(b':'),
                    1 => Just(b' '),
                    1 => Just(b'\r'),
                    1 => Just(b'%'),
                ],
                0..max,
            )
        };
        (
            text(90),
            prop_oneof![
                10 => Just(&b": "[..]),
                2 => Just(&b":"[..]),
                1 => Just(&b":   "[..]),
                1 => Just(&b" : "[..]),
                1 => Just(&b""[..]),
            ],
            text(160),
            prop_oneof![6 => Just(&b"\n"[..]), 1 => Just(&b"\r\n"[..])],
        )
            .prop_map(|(name, sep, value, eol)| [&name[..], sep, &value[..], eol].concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Long lines whose name, colon, value and line end fall in different 64-byte blocks,
        /// CRLF, runs of spaces, empty lines and colonless lines anywhere.
        #[test]
        fn scanner_agrees_with_reference_on_long_multi_block_blocks(
            lines in proptest::collection::vec(line_strategy(), 0..12),
            cut in 0usize..2000,
        ) {
            let mut bytes = lines.concat();
            proptest::prop_assert_eq!(scanned(&bytes), reference(&bytes));
            bytes.truncate(cut.min(bytes.len()));
            proptest::prop_assert_eq!(scanned(&bytes), reference(&bytes));
            // Without any `\r`, the scanner takes its other path.
            bytes.retain(|&b| b != b'\r');
            proptest::prop_assert_eq!(scanned(&bytes), reference(&bytes));
        }
    }

    #[test]
    fn name_comparison_is_ascii_case_insensitive_for_every_byte() {
        // Every byte value against every other at every position of 8..16-byte names, and
        // some other lengths, agrees with the byte-by-byte definition.
        for len in [1, 7, 8, 9, 12, 16, 17, 30] {
            for pos in 0..len {
                for x in 0..=255u8 {
                    for y in [
                        x,
                        x ^ 0x20,
                        x.to_ascii_lowercase(),
                        x.to_ascii_uppercase(),
                        b'a',
                    ] {
                        let mut a = vec![b'k'; len];
                        let mut b = a.clone();
                        a[pos] = x;
                        b[pos] = y;
                        assert_eq!(
                            eq_name(&a, &b),
                            a.eq_ignore_ascii_case(&b),
                            "{len} {pos} {x} {y}"
                        );
                    }
                }
            }
        }
        assert!(!eq_name(b"Unique-ID", b"Unique-IDx"));
        assert!(eq_name(b"content-LENGTH", b"Content-Length"));
    }

    #[test]
    fn undef_is_recognised() {
        let h = Headers::parse_block(Bytes::from_static(b"variable_x: _undef_\n")).unwrap();
        assert!(h.find(b"variable_x").unwrap().is_undef());
    }
}
