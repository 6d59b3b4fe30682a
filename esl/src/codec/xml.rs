//! `text/event-xml` bodies, as written by `switch_event_xmlize` + `switch_xml_toxml`:
//!
//! ```text
//! <event>
//!   <headers>
//!     <Event-Name>BACKGROUND_JOB</Event-Name>      values URL-encoded, then XML-escaped
//!     ...
//!   </headers>
//!   <Content-Length>41</Content-Length>           sibling of <headers>, only with a body
//!   <body>+OK ...\n  </body>                       XML-escaped; Content-Length bounds it
//! </event>
//! ```
//! A multi-value header becomes one element per item, so consecutive elements with the same
//! name are folded back into one `ARRAY::` value.

use std::borrow::Cow;

use bytes::Bytes;
use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_until, take_while, take_while1},
    character::complete::multispace0,
    combinator::opt,
    sequence::{delimited, preceded},
};

use super::event::{Event, parse_decimal};
use super::headers::{ARRAY_PREFIX, Encoding, Headers, HeadersBuilder};
use super::percent;
use crate::error::EslError;

type In<'a> = &'a [u8];

/// An element name and the values of its consecutive occurrences.
type Pending<'a> = Option<(&'a [u8], Vec<Cow<'a, [u8]>>)>;

fn err(reason: impl Into<String>) -> EslError {
    EslError::MalformedEvent {
        format: "xml",
        reason: reason.into(),
    }
}

/// Parses a whole XML event into headers (values still percent-encoded) and body.
pub(crate) fn parse_event(data: &[u8]) -> Result<(Headers, Option<Bytes>), EslError> {
    let (rest, _) = open(data, b"event").map_err(|_| err("missing <event>"))?;
    let (mut rest, _) = open(rest, b"headers").map_err(|_| err("missing <headers>"))?;

    let mut b = HeadersBuilder::with_capacity(data.len() / 2, 64);
    // The element being accumulated, so consecutive repeats can become one ARRAY value.
    let mut pending: Pending<'_> = None;
    loop {
        if let Ok((r, _)) = close(rest, b"headers") {
            rest = r;
            break;
        }
        let (r, (name, text)) = element(rest).map_err(|_| {
            err(format!(
                "expected a header element or </headers> at {:?}",
                crate::error::excerpt(rest)
            ))
        })?;
        rest = r;
        let value = unescape(text);
        match &mut pending {
            Some((n, items)) if *n == name => items.push(value),
            _ => {
                flush(&mut b, pending.take());
                pending = Some((name, vec![value]));
            }
        }
    }
    flush(&mut b, pending);

    let (rest, length) = opt(element)
        .parse(rest)
        .map_err(|_: nom::Err<nom::error::Error<In<'_>>>| err("bad element after </headers>"))?;
    let (rest, length) = match length {
        Some((name, text)) if name == b"Content-Length" => {
            let n = parse_decimal(text.trim_ascii())
                .ok_or_else(|| err("Content-Length is not a number"))?;
            b.push(name, text.trim_ascii(), Encoding::Literal);
            (rest, Some(n))
        }
        Some(_) => return Err(err("unexpected element after </headers>")),
        None => (rest, None),
    };
    let (rest, body) = opt(preceded(
        multispace0,
        delimited(tag("<body>"), take_until("</body>"), tag("</body>")),
    ))
    .parse(rest)
    .map_err(|_: nom::Err<nom::error::Error<In<'_>>>| err("unterminated <body>"))?;
    close(rest, b"event").map_err(|_| err("missing </event>"))?;

    let body = match (body, length) {
        (Some(text), Some(len)) => {
            let text = unescape(text);
            if len > text.len() {
                return Err(err(format!(
                    "Content-Length {len} exceeds the {}-byte <body>",
                    text.len()
                )));
            }
            Some(Bytes::copy_from_slice(&text[..len]))
        }
        (Some(text), None) => Some(Bytes::copy_from_slice(&unescape(text))),
        (None, Some(_)) => return Err(err("Content-Length without <body>")),
        (None, None) => None,
    };
    Ok((b.finish(), body))
}

fn flush(b: &mut HeadersBuilder, pending: Pending<'_>) {
    match pending {
        Some((name, items)) if items.len() == 1 => b.push(name, &items[0], Encoding::Percent),
        Some((name, items)) => {
            // Items are percent-encoded; the ARRAY markers must be too, so that decoding the
            // whole value once yields `ARRAY::a|:b`.
            let mut value = Vec::new();
            percent::encode_into(ARRAY_PREFIX, &mut value);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    percent::encode_into(b"|:", &mut value);
                }
                value.extend_from_slice(item);
            }
            b.push(name, &value, Encoding::Percent);
        }
        None => {}
    }
}

fn open<'a>(i: In<'a>, name: &[u8]) -> IResult<In<'a>, ()> {
    let (i, _) = multispace0(i)?;
    let (i, _) = tag(&b"<"[..])(i)?;
    let (i, _) = tag(name)(i)?;
    let (i, _) = tag(&b">"[..])(i)?;
    Ok((i, ()))
}

fn close<'a>(i: In<'a>, name: &[u8]) -> IResult<In<'a>, ()> {
    let (i, _) = multispace0(i)?;
    let (i, _) = tag(&b"</"[..])(i)?;
    let (i, _) = tag(name)(i)?;
    let (i, _) = tag(&b">"[..])(i)?;
    let (i, _) = multispace0(i)?;
    Ok((i, ()))
}

/// `<Name>text</Name>` (the closing name must match).
fn element(i: In<'_>) -> IResult<In<'_>, (In<'_>, In<'_>)> {
    let (i, _) = multispace0(i)?;
    let (i, _) = tag(&b"<"[..])(i)?;
    let (i, name) =
        take_while1(|c: u8| c != b'>' && c != b'/' && c != b'<' && !c.is_ascii_whitespace())(i)?;
    let (i, _) = tag(&b">"[..])(i)?;
    let (i, text) = take_while(|c: u8| c != b'<')(i)?;
    let (i, _) = tag(&b"</"[..])(i)?;
    let (i, _) = tag(name)(i)?;
    let (i, _) = tag(&b">"[..])(i)?;
    Ok((i, (name, text)))
}

/// Undoes XML escaping: the five named entities and numeric references. Anything unknown is
/// kept literally.
fn unescape(text: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'&', text).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'&'
            && let Some(semi) = text[i..].iter().take(12).position(|&c| c == b';')
        {
            let entity = &text[i + 1..i + semi];
            let decoded: Option<Vec<u8>> = match entity {
                b"amp" => Some(b"&".to_vec()),
                b"lt" => Some(b"<".to_vec()),
                b"gt" => Some(b">".to_vec()),
                b"quot" => Some(b"\"".to_vec()),
                b"apos" => Some(b"'".to_vec()),
                [b'#', b'x' | b'X', hex @ ..] => numeric(hex, 16),
                [b'#', dec @ ..] => numeric(dec, 10),
                _ => None,
            };
            if let Some(d) = decoded {
                out.extend_from_slice(&d);
                i += semi + 1;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn numeric(digits: &[u8], radix: u32) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(digits).ok()?;
    let c = char::from_u32(u32::from_str_radix(s, radix).ok()?)?;
    let mut buf = [0u8; 4];
    Some(c.encode_utf8(&mut buf).as_bytes().to_vec())
}

fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    for &c in text {
        match c {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            _ => out.push(c),
        }
    }
}

/// Writes an event the way FreeSWITCH 1.10 does (two-space indentation, values URL-encoded).
pub(crate) fn serialize_event(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.headers().len() * 80 + 64);
    out.extend_from_slice(b"<event>\n  <headers>\n");
    for h in event.headers_without_length() {
        let value = h.value();
        let items = if value.starts_with(ARRAY_PREFIX) {
            super::headers::split_array(&value)
        } else {
            vec![value.into_owned()]
        };
        for item in items {
            out.extend_from_slice(b"    <");
            out.extend_from_slice(h.name_bytes());
            out.push(b'>');
            let mut enc = Vec::with_capacity(item.len());
            percent::encode_into(&item, &mut enc);
            escape_into(&enc, &mut out);
            out.extend_from_slice(b"</");
            out.extend_from_slice(h.name_bytes());
            out.extend_from_slice(b">\n");
        }
    }
    out.extend_from_slice(b"  </headers>\n");
    if let Some(body) = event.body().filter(|b| !b.is_empty()) {
        out.extend_from_slice(
            format!(
                "  <Content-Length>{}</Content-Length>\n  <body>",
                body.len()
            )
            .as_bytes(),
        );
        escape_into(body, &mut out);
        out.extend_from_slice(b"\n  </body>\n");
    }
    out.extend_from_slice(b"</event>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capture_shaped_event_with_body() {
        let xml = b"<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n    <Job-Command-Arg>loopback/7001/default%20%26park()</Job-Command-Arg>\n  </headers>\n  <Content-Length>41</Content-Length>\n  <body>+OK b97f5d6d-ffb6-473c-b50c-37f8596e1ddb\n  </body>\n</event>\n";
        let (h, body) = parse_event(xml).unwrap();
        assert_eq!(
            h.get_str("Job-Command-Arg").unwrap(),
            "loopback/7001/default &park()"
        );
        assert_eq!(h.get_str("Content-Length").unwrap(), "41");
        assert_eq!(
            &body.unwrap()[..],
            b"+OK b97f5d6d-ffb6-473c-b50c-37f8596e1ddb\n"
        );
    }

    #[test]
    fn repeated_elements_fold_into_an_array() {
        let xml =
            b"<event><headers><Event-Name>X</Event-Name><M>a%20b</M><M>c</M></headers></event>";
        let (h, _) = parse_event(xml).unwrap();
        let m = h.find(b"M").unwrap();
        assert_eq!(m.values(), vec![b"a b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn entities_are_unescaped_once() {
        let xml = b"<event><headers><A>x&amp;lt;y</A></headers><Content-Length>3</Content-Length><body>&lt;&#x41;&gt;</body></event>";
        let (h, body) = parse_event(xml).unwrap();
        assert_eq!(h.get_str("A").unwrap(), "x&lt;y");
        assert_eq!(&body.unwrap()[..], b"<A>");
    }

    #[test]
    fn malformed_xml_is_a_typed_error() {
        for bad in [
            &b"<event><headers><A>1</B></headers></event>"[..],
            b"<event>",
            b"",
            b"<event><headers></headers><body>x</event>",
        ] {
            assert!(
                matches!(parse_event(bad), Err(EslError::MalformedEvent { .. })),
                "{bad:?}"
            );
        }
    }
}
