//! The checks behind the fuzz targets. `esl/tests/fuzz_regressions.rs` includes this file by
//! path, so every crash found here replays under `cargo test` with the very same oracle.
//!
//! Input layout for the decoders: the first byte says how many of the following bytes describe
//! the chunking (0..=7); each of those bytes is one chunk length (0 = everything left), cycled.
//! The rest is the wire.

use bytes::{Bytes, BytesMut};
use switchyard_esl::codec::{
    Command, CommandDecoder, CommandFrame, DecoderLimits, EslCodec, Event, EventFormat, Message,
};

/// Splits fuzz input into (chunk lengths, wire bytes).
pub fn split_spec(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (vec![0], data);
    };
    let n = usize::from(n % 8).min(rest.len());
    let (spec, wire) = rest.split_at(n);
    let mut sizes: Vec<usize> = spec
        .iter()
        .map(|&b| if b == 0 { usize::MAX } else { usize::from(b) })
        .collect();
    if sizes.is_empty() {
        sizes.push(usize::MAX);
    }
    (sizes, wire)
}

/// Feeds `wire` in chunks of the given lengths (cycled), decoding after each chunk until the
/// decoder wants more. Returns what was decoded and the first error (as text), if any.
fn feed<T>(
    wire: &[u8],
    sizes: &[usize],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, String>,
) -> (Vec<T>, Option<String>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = sizes[i % sizes.len()].min(wire.len() - pos);
        i += 1;
        buf.extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        loop {
            match decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn small_limits() -> DecoderLimits {
    DecoderLimits {
        max_header_block: 64,
        max_content_length: 64,
    }
}

/// Touches every accessor a consumer might call; none may panic.
fn touch_event(e: &Event) {
    let _ = (
        e.name(),
        e.subclass(),
        e.unique_id(),
        e.core_uuid(),
        e.sequence(),
    );
    let _ = (
        e.job_uuid(),
        e.application(),
        e.hangup_cause(),
        e.body_str(),
    );
    let _ = (e.caller("ID-Number"), e.variable("sip_call_id"));
    for h in e.headers().iter() {
        let _ = (
            h.name(),
            h.value_str(),
            h.is_undef(),
            h.is_array(),
            h.values(),
        );
    }
    let _ = e.to_json_string();
}

fn touch_message(m: &Message) {
    let _ = m.content_type();
    match m {
        Message::Event(e) => touch_event(e),
        Message::CommandReply(r) => {
            let _ = (r.text(), r.is_ok(), r.job_uuid());
            let _ = r.clone().into_channel_data();
        }
        Message::DisconnectNotice(n) => {
            let _ = (n.disposition(), n.linger_time(), n.session_uuid());
        }
        Message::LogData(l) => {
            let _ = l.level();
        }
        _ => {}
    }
}

/// `decode_messages`: any bytes, any chunking. Never panics, and the chunking never changes
/// the outcome: whole buffer, the fuzzed chunking and byte-at-a-time decode the same messages
/// and stop at the same error. Every decoded message re-encodes to bytes that decode again.
pub fn decode_messages(data: &[u8]) {
    let (sizes, wire) = split_spec(data);
    for limits in [DecoderLimits::default(), small_limits()] {
        let run = |sizes: &[usize]| {
            let mut codec = EslCodec::new(limits);
            feed(wire, sizes, |buf| {
                let r = codec.decode_message(buf).map_err(|e| format!("{e:?}"));
                let _ = codec.in_frame(buf);
                r
            })
        };
        let whole = run(&[usize::MAX]);
        assert_eq!(run(&sizes), whole, "chunking {sizes:?} changed the outcome");
        assert_eq!(run(&[1]), whole, "byte-at-a-time changed the outcome");
        for m in &whole.0 {
            touch_message(m);
            let mut out = BytesMut::new();
            m.encode(&mut out);
            let mut codec = EslCodec::default();
            let again = codec.decode_message(&mut out);
            assert!(
                matches!(again, Ok(Some(_))),
                "re-encoded {m:?} does not decode: {again:?}"
            );
        }
    }
}

/// `decode_commands`: the switch side. Never panics, chunking never changes the outcome, and
/// a command that parses and encodes parses back to itself.
pub fn decode_commands(data: &[u8]) {
    let (sizes, wire) = split_spec(data);
    for limits in [DecoderLimits::default(), small_limits()] {
        let run = |sizes: &[usize]| {
            let mut d = CommandDecoder::new(limits);
            feed(wire, sizes, |buf| {
                d.decode(buf).map_err(|e| format!("{e:?}"))
            })
        };
        let whole = run(&[usize::MAX]);
        assert_eq!(run(&sizes), whole, "chunking {sizes:?} changed the outcome");
        assert_eq!(run(&[1]), whole, "byte-at-a-time changed the outcome");
        for frame in &whole.0 {
            let Ok(cmd) = Command::parse(frame) else {
                continue;
            };
            let _ = cmd.describe();
            let Ok(bytes) = cmd.to_bytes() else {
                continue;
            };
            let back = reparse_command(&bytes);
            assert_eq!(
                back.as_ref(),
                Some(&cmd),
                "{frame:?} -> {cmd:?} -> {bytes:?}"
            );
        }
    }
}

fn reparse_command(bytes: &Bytes) -> Option<Command> {
    let mut buf = BytesMut::from(&bytes[..]);
    let frame: CommandFrame = CommandDecoder::default().decode(&mut buf).ok()??;
    assert!(
        buf.is_empty(),
        "one command encodes to one frame: {bytes:?}"
    );
    Command::parse(&frame).ok()
}

/// The headers and body a format must carry across. The body's own `Content-Length` is left
/// out when there is a body: each format writes it itself, in its own place (last in plain and
/// JSON, after `</headers>` in XML), so its position is not part of the event.
/// Decoded (name, value) pairs and the body.
pub type Normalized = (Vec<(Vec<u8>, Vec<u8>)>, Option<Vec<u8>>);

pub fn normalized(e: &Event) -> Normalized {
    let has_body = e.body().is_some();
    let headers = e
        .headers()
        .iter()
        .filter(|h| {
            !(h.name_bytes().eq_ignore_ascii_case(b"Content-Length")
                && (has_body || &*h.value() == b"0"))
        })
        .map(|h| (h.name_bytes().to_vec(), h.value().into_owned()))
        .collect();
    // No format tells an empty body from none (`Content-Length: 0`, an empty `<body>`, `"_body":""`).
    (
        headers,
        e.body().filter(|b| !b.is_empty()).map(|b| b.to_vec()),
    )
}

/// Whether `format` can carry `e` at all (limits of the formats themselves, not of the codec).
pub fn representable(e: &Event, format: EventFormat) -> bool {
    let names_ok = |ok: &dyn Fn(&[u8]) -> bool| e.headers().iter().all(|h| ok(h.name_bytes()));
    match format {
        // A name is everything before the first colon of a line.
        EventFormat::Plain => {
            names_ok(&|n| !n.is_empty() && !n.contains(&b':') && !n.contains(&b'\n'))
        }
        // JSON strings are UTF-8, and `_body` is where the body goes.
        EventFormat::Json => {
            e.headers().iter().all(|h| {
                std::str::from_utf8(h.name_bytes()).is_ok()
                    && std::str::from_utf8(&h.value()).is_ok()
                    && h.name_bytes() != b"_body"
            }) && e.body().is_none_or(|b| std::str::from_utf8(b).is_ok())
        }
        // Names are element names; a multi-value header is one element per item, so a
        // one-item array and two neighbours of the same name cannot be told apart.
        EventFormat::Xml => {
            // Neighbours as written: the body's Content-Length is not written among them.
            let has_body = e.body().is_some();
            let mut prev: Option<&[u8]> = None;
            e.headers()
                .iter()
                .filter(|h| !(has_body && h.name_bytes().eq_ignore_ascii_case(b"Content-Length")))
                .all(|h| {
                    let n = h.name_bytes();
                    let ok = !n.is_empty()
                        && !n
                            .iter()
                            .any(|&c| matches!(c, b'<' | b'>' | b'/') || c.is_ascii_whitespace())
                        && prev != Some(n);
                    prev = Some(n);
                    let v = h.value();
                    let one_item_array =
                        v.starts_with(b"ARRAY::") && !v[7..].windows(2).any(|w| w == b"|:");
                    ok && !one_item_array
                })
        }
    }
}

pub fn parse(format: EventFormat, data: &[u8]) -> Result<Event, switchyard_esl::EslError> {
    match format {
        EventFormat::Plain => Event::parse_plain(Bytes::copy_from_slice(data)),
        EventFormat::Json => Event::parse_json(data),
        EventFormat::Xml => Event::parse_xml(data),
    }
}

pub const FORMATS: [EventFormat; 3] = [EventFormat::Plain, EventFormat::Json, EventFormat::Xml];

/// `event_formats`: the first byte picks the format to parse the rest as. Parsing never
/// panics; an event that parses re-serialises in every format that can carry it and parses
/// back with the same headers and body.
pub fn event_formats(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let Ok(e) = parse(FORMATS[usize::from(sel % 3)], body) else {
        return;
    };
    touch_event(&e);
    check_round_trips(&e);
}

pub fn check_round_trips(e: &Event) {
    for f in FORMATS {
        if !representable(e, f) {
            continue;
        }
        let wire = e.serialize(f);
        let back = parse(f, &wire).unwrap_or_else(|err| {
            panic!(
                "{f:?} output does not parse back: {err}\nevent {e:?}\nwire {:?}",
                String::from_utf8_lossy(&wire)
            )
        });
        assert_eq!(
            normalized(&back),
            normalized(e),
            "{f:?} round trip changed the event\nwire {:?}",
            String::from_utf8_lossy(&wire)
        );
    }
}
