//! The fast path for `text/event-json`: FreeSWITCH writes events as one flat object of plain
//! strings (`{"Event-Name":"CHANNEL_ANSWER","Core-UUID":"...",...}`), almost never with an
//! escape. For that shape the headers can be indexed where they lie in the received buffer,
//! without copying a byte. Anything else (an escape, a control byte, an array, a number, a
//! nested object, odd syntax) makes this path decline, and the general serde_json path parses
//! the event and reports any error, so correctness never rests on this module.

use bytes::Bytes;

use super::headers::{Headers, SpansOver};

/// Indexes a flat object of plain strings, or `None` to let the general parser decide.
/// Bytes are not UTF-8 validated here: header values are bytes everywhere in this codec.
pub(crate) fn parse(data: &Bytes) -> Option<(Headers, Option<Bytes>)> {
    let b: &[u8] = data;
    let mut spans = SpansOver::with_capacity((b.len() / 36).clamp(4, 256));
    let mut body = None;
    let mut p = skip_ws(b, 0);
    if b.get(p) != Some(&b'{') {
        return None;
    }
    p = skip_ws(b, p + 1);
    if b.get(p) == Some(&b'}') {
        return (skip_ws(b, p + 1) == b.len()).then(|| (spans.finish(data.clone()), None));
    }
    loop {
        let (key, after_key) = string(b, p)?;
        p = skip_ws(b, after_key);
        if b.get(p) != Some(&b':') {
            return None;
        }
        p = skip_ws(b, p + 1);
        let (value, after_value) = string(b, p)?;
        if &b[key.0..key.1] == b"_body" {
            body = Some(data.slice(value.0..value.1));
        } else {
            spans.push_literal(key, value);
        }
        p = skip_ws(b, after_value);
        match b.get(p) {
            Some(b',') => p = skip_ws(b, p + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    (skip_ws(b, p + 1) == b.len()).then(|| (spans.finish(data.clone()), body))
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(p) {
        p += 1;
    }
    p
}

const QUOTES: u64 = 0x0101_0101_0101_0101 * b'"' as u64;
const BACKSLASHES: u64 = 0x0101_0101_0101_0101 * b'\\' as u64;

/// A string without escapes starting at `p` (the opening quote): the span of its contents and
/// the offset after the closing quote.
#[inline(always)]
fn string(b: &[u8], p: usize) -> Option<((usize, usize), usize)> {
    if b.get(p) != Some(&b'"') {
        return None;
    }
    let start = p + 1;
    let mut q = start;
    loop {
        let Some(word) = b.get(q..q + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
            // Fewer than eight bytes left: finish byte by byte.
            let rel = b[q..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            let end = q + rel;
            return (b[end] == b'"').then_some(((start, end), end + 1));
        };
        let w = u64::from_le_bytes(word);
        let m = super::headers::zero_bytes(w ^ QUOTES)
            | super::headers::zero_bytes(w ^ BACKSLASHES)
            | control_bytes(w);
        if m != 0 {
            // The lowest flagged lane is always a true match (see `control_bytes`).
            let end = q + (m.trailing_zeros() >> 3) as usize;
            return (b[end] == b'"').then_some(((start, end), end + 1));
        }
        q += 8;
    }
}

/// Flags lanes holding a byte below 0x20 (JSON forbids them raw in strings). A borrow can flag
/// a lane above a true match, never below one, so the lowest flagged lane is exact.
#[inline(always)]
fn control_bytes(w: u64) -> u64 {
    w.wrapping_sub(0x2020_2020_2020_2020) & !w & 0x8080_8080_8080_8080
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: &Headers) -> Vec<(String, String)> {
        h.iter()
            .map(|h| (h.name().into_owned(), h.value_str().into_owned()))
            .collect()
    }

    #[test]
    fn indexes_a_flat_object_without_copying() {
        let data =
            Bytes::from_static(br#"{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"u-1","Empty":""}"#);
        let (h, body) = parse(&data).unwrap();
        assert_eq!(
            pairs(&h),
            [
                ("Event-Name", "CHANNEL_ANSWER"),
                ("Unique-ID", "u-1"),
                ("Empty", "")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert!(body.is_none());
    }

    #[test]
    fn declines_what_only_the_general_parser_handles() {
        for s in [
            &br#"{"a":"x\ny"}"#[..],
            br#"{"a":"x\"y"}"#,
            br#"{"a":["x","y"]}"#,
            br#"{"a":1}"#,
            br#"{"a":"b",}"#,
            br#"{"a":"b"} x"#,
            b"{\"a\":\"\x01\"}",
            br#"["a"]"#,
            br#"{"a":"b""#,
            b"",
        ] {
            assert!(
                parse(&Bytes::copy_from_slice(s)).is_none(),
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    proptest::proptest! {
        /// Whenever the fast path accepts, it agrees with serde_json exactly.
        #[test]
        fn agrees_with_the_general_parser(
            pairs in proptest::collection::vec(("[A-Za-z_-]{0,12}", "[ -~é\\\\\"\n]{0,20}"), 0..8),
            ws in "[ \n]{0,2}",
        ) {
            let mut text = format!("{ws}{{");
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 { text.push(','); text.push_str(&ws); }
                text.push_str(&serde_json::to_string(k).unwrap());
                text.push(':');
                text.push_str(&serde_json::to_string(v).unwrap());
            }
            text.push('}');
            let data = Bytes::from(text);
            let general = crate::Event::parse_json(&data).unwrap();
            if let Some((h, body)) = parse(&data) {
                proptest::prop_assert_eq!(&h, general.headers());
                proptest::prop_assert_eq!(body.as_ref(), general.body());
            }
        }
    }

    #[test]
    fn body_and_whitespace() {
        let data = Bytes::from_static(b" { \"A\" : \"1\" , \"_body\" : \"ok\" } ");
        let (h, body) = parse(&data).unwrap();
        assert_eq!(pairs(&h), [("A".to_owned(), "1".to_owned())]);
        assert_eq!(&body.unwrap()[..], b"ok");
        assert!(parse(&Bytes::from_static(b"{}")).unwrap().0.is_empty());
    }
}
