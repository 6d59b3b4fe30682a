//! URL (percent) encoding as FreeSWITCH applies it to event header values.
//!
//! Decoding follows DESIGN.md §9: only `%XX` is special, `+` stays a plus, the result is bytes
//! (`%E9` is the byte 0xE9, not UTF-8), an invalid escape is kept literally, and nothing panics.

use std::borrow::Cow;

/// Decodes `%XX` escapes into bytes. Borrows when there is nothing to decode.
pub fn decode(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = find_percent(input) else {
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

/// The first `%` of `input`. Most values read are short (names, UUIDs, numbers), where
/// memchr's setup costs more than the search: those are checked 16 or 8 bytes at a time, the
/// last piece overlapping the previous one.
#[inline]
fn find_percent(input: &[u8]) -> Option<usize> {
    let n = input.len();
    if n >= 64 {
        return memchr::memchr(b'%', input);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(last) = input.last_chunk::<16>() {
        let (chunks, _) = input.as_chunks::<16>();
        for (k, c) in chunks.iter().enumerate() {
            if let Some(i) = sse2::first_percent(c) {
                return Some(16 * k + i);
            }
        }
        return sse2::first_percent(last).map(|i| n - 16 + i);
    }
    if let (Some(head), Some(last)) = (input.first_chunk::<8>(), input.last_chunk::<8>()) {
        return percent_in_word(head).or_else(|| percent_in_word(last).map(|i| n - 8 + i));
    }
    input.iter().position(|&b| b == b'%')
}

/// The first `%` of eight bytes.
#[inline]
fn percent_in_word(w: &[u8; 8]) -> Option<usize> {
    const PERCENTS: u64 = 0x0101_0101_0101_0101 * b'%' as u64;
    match super::headers::zero_bytes(u64::from_le_bytes(*w) ^ PERCENTS) {
        0 => None,
        z => Some(z.trailing_zeros() as usize / 8),
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };

    /// The first `%` of sixteen bytes.
    #[inline(always)]
    pub(super) fn first_percent(c: &[u8; 16]) -> Option<usize> {
        let v = load_unaligned_m128i(c);
        match move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'%' as i8))) {
            0 => None,
            m => Some(m.trailing_zeros() as usize),
        }
    }
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
    fn finds_the_first_percent_at_every_length_and_position() {
        for n in 0..100 {
            let clean = vec![b'a'; n];
            assert_eq!(find_percent(&clean), None, "{n}");
            for at in 0..n {
                for second in [None, Some(at + 1), Some(n - 1)] {
                    let mut v = clean.clone();
                    v[at] = b'%';
                    if let Some(s) = second.filter(|&s| s < n) {
                        v[s] = b'%';
                    }
                    assert_eq!(find_percent(&v), Some(at), "{n} {at}");
                }
            }
        }
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
