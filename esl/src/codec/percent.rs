//! URL (percent) encoding as FreeSWITCH applies it to event header values.
//!
//! Decoding follows DESIGN.md §9: only `%XX` is special, `+` stays a plus, the result is bytes
//! (`%E9` is the byte 0xE9, not UTF-8), an invalid escape is kept literally, and nothing panics.

use std::borrow::Cow;

/// Decodes `%XX` escapes into bytes. Borrows when there is nothing to decode.
pub fn decode(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memchr(b'%', input) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < input.len() {
        let b = input[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|&c| hex(c)),
                input.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Bytes FreeSWITCH escapes in `switch_url_encode` (`SWITCH_URL_UNSAFE` plus control and
/// non-ASCII bytes). `,` `(` `)` `/` `'` `*` `!` stay as they are, as in the captures.
fn is_unsafe(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || b"\"#%&+:;<=>?@[\\]^`{|}".contains(&b)
}

/// Appends `input` percent-encoded the way FreeSWITCH encodes plain and XML event values.
pub fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if is_unsafe(b) {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_stays_plus_and_escapes_decode() {
        assert_eq!(&*decode(b"%2BOK%0A"), b"+OK\n");
        assert_eq!(&*decode(b"+OK accepted"), b"+OK accepted");
    }

    #[test]
    fn latin1_escape_is_a_byte_not_utf8() {
        assert_eq!(&*decode(b"caf%E9"), b"caf\xE9");
    }

    #[test]
    fn invalid_and_truncated_escapes_stay_literal() {
        assert_eq!(&*decode(b"100%"), b"100%");
        assert_eq!(&*decode(b"%G1%4"), b"%G1%4");
        assert_eq!(&*decode(b"%%41"), b"%A");
    }

    #[test]
    fn decodes_exactly_once() {
        assert_eq!(&*decode(b"%2541"), b"%41");
    }

    #[test]
    fn no_escape_borrows() {
        assert!(matches!(decode(b"CHANNEL_CREATE"), Cow::Borrowed(_)));
    }

    #[test]
    fn encode_matches_capture_style() {
        let mut out = Vec::new();
        encode_into(b"2026-11-21 15:42:36", &mut out);
        assert_eq!(out, b"2026-11-21%2015%3A42%3A36");
        out.clear();
        encode_into(b"loopback/7001/default &park()", &mut out);
        assert_eq!(out, b"loopback/7001/default%20%26park()");
    }
}
