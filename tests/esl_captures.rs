//! The codec against real FreeSWITCH 1.10 wire traffic (../shared/esl-captures).

mod common;

use std::collections::BTreeMap;

use bytes::BytesMut;
use common::{CLIENT2FS, FS2CLIENT, raw, transcript};
use switchyard_esl::codec::{Command, CommandDecoder, Disposition, EslCodec, Message};

fn decode_all(bytes: &[u8]) -> (Vec<Message>, usize) {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = codec.decode_message(&mut buf).expect("capture decodes") {
        out.push(m);
    }
    (out, buf.len())
}

/// The SUMMARY.json spelling of a message kind.
fn kind(m: &Message) -> String {
    match m {
        Message::Event(e) => {
            let name = e.name().unwrap_or_default().into_owned();
            let mut k = format!("{} {name}", e.format().content_type());
            if name == "CUSTOM" {
                // SUMMARY.json spells the subclass as it was on the wire.
                let sub = e
                    .headers()
                    .find(b"Event-Subclass")
                    .map(|h| h.raw_value().to_vec())
                    .unwrap_or_default();
                k.push(' ');
                k.push_str(&String::from_utf8_lossy(&sub));
                if let Some(action) = e.header("CC-Action") {
                    k.push(' ');
                    k.push_str(&action);
                }
            }
            k
        }
        other => other.content_type().into_owned(),
    }
}

fn summary() -> serde_json::Value {
    let path = common::captures_dir().join("SUMMARY.json");
    serde_json::from_slice(&std::fs::read(path).expect("SUMMARY.json"))
        .expect("SUMMARY.json parses")
}

#[test]
fn every_capture_decodes_to_the_messages_summary_lists() {
    let summary = summary();
    let mut checked = 0;
    for (capture, v) in summary.as_object().unwrap() {
        let stem = capture.rsplit_once('.').unwrap().0;
        // Not every capture is Event Socket traffic: the recorder leg's SIP/RTP datagrams
        // (`*.udp.bin`) have frames, not connections.
        let Some(connections) = v["connections"].as_object() else {
            assert!(
                v.get("frames").is_some(),
                "{capture}: neither connections nor frames"
            );
            continue;
        };
        for (conn, c) in connections {
            let Some(expected) = c.get("S>C message kinds") else {
                continue;
            };
            let (msgs, leftover) = decode_all(&raw(&format!("{stem}.{conn}.fs2client.raw")));
            assert_eq!(leftover, 0, "{stem}.{conn}: bytes left over");
            assert_eq!(
                msgs.len() as u64,
                c["S>C messages"].as_u64().unwrap(),
                "{stem}.{conn}: message count"
            );
            let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
            for m in &msgs {
                *kinds.entry(kind(m)).or_default() += 1;
            }
            let expected: BTreeMap<String, u64> = expected
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
                .collect();
            assert_eq!(kinds, expected, "{stem}.{conn}: message kinds");
            checked += 1;
        }
    }
    // 11 streams in the first captures, 34 more with the bridge-race, recording, digits and
    // recorder-leg captures: a capture set that shrinks is a mistake worth hearing about.
    assert!(
        checked >= 45,
        "every switch-to-client stream was checked ({checked})"
    );
}

#[test]
fn auth_and_api_capture_decodes_exactly() {
    let (m, _) = decode_all(&raw("inbound-auth-and-api.c1.fs2client.raw"));
    assert_eq!(m[0], Message::AuthRequest);
    let Message::CommandReply(r) = &m[1] else {
        panic!("{:?}", m[1])
    };
    assert_eq!(r.text(), "+OK accepted");
    assert!(r.is_ok());
    let Message::ApiResponse(status) = &m[2] else {
        panic!()
    };
    assert_eq!(status.len(), 368);
    assert!(status.starts_with(b"UP 0 years"));
    let Message::ApiResponse(empty) = &m[3] else {
        panic!()
    };
    assert_eq!(&empty[..], b"{\"row_count\": 0}\n");
    let Message::CommandReply(nf) = &m[5] else {
        panic!()
    };
    assert_eq!(nf.text(), "-ERR command not found");
    let Message::ApiResponse(ns) = &m[6] else {
        panic!()
    };
    assert_eq!(&ns[..], b"-ERR nosuchcommand Command not found!\n");
    let Message::ApiResponse(chans) = &m[8] else {
        panic!()
    };
    let v: serde_json::Value = serde_json::from_slice(chans).unwrap();
    assert_eq!(v["row_count"], 2);
    let Message::ApiResponse(noroute) = &m[11] else {
        panic!()
    };
    assert_eq!(&noroute[..], b"-ERR NO_ROUTE_DESTINATION\n");
    let Message::CommandReply(bye) = &m[12] else {
        panic!()
    };
    assert_eq!(bye.text(), "+OK bye");
    let Message::DisconnectNotice(n) = &m[13] else {
        panic!()
    };
    assert_eq!(n.body().len(), 67);
    assert_eq!(n.disposition(), None);

    let (m, _) = decode_all(&raw("inbound-auth-and-api.c2.fs2client.raw"));
    let Message::CommandReply(r) = &m[1] else {
        panic!()
    };
    assert_eq!(r.text(), "-ERR invalid");
    assert!(!r.is_ok());
}

#[test]
fn background_job_body_and_job_uuid_decode_in_all_formats() {
    for (file, fmt) in [
        ("inbound-events-plain.c1.fs2client.raw", "plain"),
        ("inbound-events-json.c1.fs2client.raw", "json"),
        ("inbound-events-xml.c1.fs2client.raw", "xml"),
    ] {
        let (m, _) = decode_all(&raw(file));
        let Message::CommandReply(reply) = &m[3] else {
            panic!("{fmt}: {:?}", m[3])
        };
        let job = reply.job_uuid().unwrap().into_owned();
        assert_eq!(reply.text(), format!("+OK Job-UUID: {job}"));
        let bg = m
            .iter()
            .find_map(|x| match x {
                Message::Event(e) if e.name().as_deref() == Some("BACKGROUND_JOB") => Some(e),
                _ => None,
            })
            .unwrap();
        assert_eq!(bg.job_uuid().unwrap(), job, "{fmt}");
        assert_eq!(bg.header("Job-Command").unwrap(), "originate", "{fmt}");
        assert_eq!(
            bg.header("Job-Command-Arg").unwrap(),
            "loopback/7001/default &park()",
            "{fmt}"
        );
        let body = bg.body_str().unwrap();
        assert!(
            body.starts_with("+OK ") && body.ends_with('\n') && body.len() == 41,
            "{fmt}: {body:?}"
        );
        assert_eq!(bg.header("Content-Length").unwrap(), "41", "{fmt}");
        assert_eq!(bg.header("FreeSWITCH-IPv6").unwrap(), "fd00::2", "{fmt}");
    }
}

/// Masks what differs between two runs of the same scenario: every token of hex digits and
/// dashes that holds a digit (UUIDs, times, sequence numbers, sizes) becomes `#`.
fn normalize(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    let mut out = String::new();
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.extend(
                token
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c }),
            );
        }
        token.clear();
    };
    for c in s.chars() {
        if c.is_ascii_hexdigit() || c == '-' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

#[test]
fn plain_and_json_captures_of_the_same_events_agree() {
    // The same mod_callcenter scenario recorded twice, once per format: the same events with
    // the same header names in the same order; values differ only where a run differs (ids,
    // times), so every header that is not run-specific must agree exactly.
    let events = |file: &str| -> Vec<switchyard_esl::Event> {
        decode_all(&raw(file))
            .0
            .into_iter()
            .filter_map(|m| match m {
                Message::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    };
    for (plain, json) in [
        (
            "mod-callcenter.c1.fs2client.raw",
            "mod-callcenter-json.c1.fs2client.raw",
        ),
        (
            "inbound-events-plain.c1.fs2client.raw",
            "inbound-events-json.c1.fs2client.raw",
        ),
    ] {
        let (p, j) = (events(plain), events(json));
        assert_eq!(p.len(), j.len());
        // The two runs interleave concurrent legs differently, so pair the k-th event of each
        // name (and channel direction) in one run with the k-th of the other.
        let key = |e: &switchyard_esl::Event| {
            format!(
                "{} {} {}",
                e.name().unwrap_or_default(),
                e.header("Call-Direction").unwrap_or_default(),
                e.header("CC-Action").unwrap_or_default()
            )
        };
        let mut pool: BTreeMap<String, Vec<&switchyard_esl::Event>> = BTreeMap::new();
        for e in &j {
            pool.entry(key(e)).or_default().push(e);
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut compared = 0;
        for a in &p {
            let k = key(a);
            let i = seen.entry(k.clone()).or_default();
            let b = pool[&k][*i];
            *i += 1;
            for ha in a.headers().iter() {
                let name = ha.name();
                // Who answers first and how long things take differ between runs.
                let racy = [
                    "Channel-Call-State",
                    "Answer-State",
                    "Channel-State",
                    "Hangup",
                    "Bridge",
                    "Other-",
                    "Application-Response",
                ]
                .iter()
                .any(|r| name.contains(r));
                if !racy && let Some(hb) = b.headers().find(ha.name_bytes()) {
                    assert_eq!(normalize(&ha.value()), normalize(&hb.value()), "{k} {name}");
                    compared += 1;
                }
            }
            // FreeSWITCH-IPv6 is URL-encoded in plain and literal in JSON: decoding makes them equal.
            assert_eq!(a.header("FreeSWITCH-IPv6").as_deref(), Some("fd00::2"));
            assert_eq!(a.header("FreeSWITCH-IPv6"), b.header("FreeSWITCH-IPv6"));
            assert_eq!(
                a.body_str().map(|s| s.len()),
                b.body_str().map(|s| s.len()),
                "{k}"
            );
        }
        assert!(
            compared >= 5 * p.len(),
            "{plain}: only {compared} stable values compared"
        );
    }
}

#[test]
fn decoded_events_reencode_and_decode_to_the_same_event_in_every_format() {
    use switchyard_esl::EventFormat::{Json, Plain, Xml};
    for file in [
        "inbound-events-plain.c1.fs2client.raw",
        "inbound-events-json.c1.fs2client.raw",
        "inbound-events-xml.c1.fs2client.raw",
        "mod-callcenter.c1.fs2client.raw",
    ] {
        for m in decode_all(&raw(file)).0 {
            let Message::Event(e) = m else { continue };
            for f in [Plain, Json, Xml] {
                let again =
                    switchyard_esl::Event::from_parts(f, e.headers().clone(), e.body().cloned());
                let mut wire = BytesMut::new();
                Message::Event(again).encode(&mut wire);
                let (back, left) = decode_all(&wire);
                assert_eq!(left, 0);
                let [Message::Event(b)] = &back[..] else {
                    panic!("{file} {f:?}: {back:?}")
                };
                assert_eq!(b.headers(), e.headers(), "{file} {f:?} {:?}", e.name());
                assert_eq!(b.body(), e.body(), "{file} {f:?}");
            }
        }
    }
}

#[test]
fn outbound_connect_reply_is_channel_data_and_linger_notice_decodes() {
    let (m, left) = decode_all(&raw("outbound-socket.o1.fs2client.raw"));
    assert_eq!(left, 0);
    let Message::CommandReply(connect) = &m[0] else {
        panic!("{:?}", m[0])
    };
    assert_eq!(connect.text(), "+OK\n");
    assert_eq!(connect.headers().get_str("Socket-Mode").unwrap(), "async");
    assert_eq!(connect.headers().get_str("Control").unwrap(), "full");
    let data = connect.clone().into_channel_data();
    assert_eq!(data.name().unwrap(), "CHANNEL_DATA");
    assert_eq!(data.header("Channel-Destination-Number").unwrap(), "7000");
    assert_eq!(
        data.header("Channel-Callee-ID-Name").unwrap(),
        "Outbound Call"
    );
    assert!(data.headers().len() > 90);
    let notices: Vec<_> = m
        .iter()
        .filter_map(|x| match x {
            Message::DisconnectNotice(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].disposition(), Some(Disposition::Linger));
    assert_eq!(notices[0].linger_time(), Some(-1));
    assert!(notices[0].body().is_empty());
    assert_eq!(notices[1].disposition(), Some(Disposition::Disconnect));
    assert_eq!(notices[1].body().len(), 67);
    assert_eq!(notices[0].session_uuid(), notices[1].session_uuid());
    let exec_complete: Vec<_> = m
        .iter()
        .filter_map(|x| match x {
            Message::Event(e) if e.name().as_deref() == Some("CHANNEL_EXECUTE_COMPLETE") => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(exec_complete[1].application().unwrap(), "playback");
    assert_eq!(
        exec_complete[1].application_response().unwrap(),
        "FILE PLAYED"
    );
}

#[test]
fn rude_rejection_decodes() {
    for f in [
        "inbound-rude-rejection.r1.fs2client.raw",
        "inbound-rude-rejection.r2.fs2client.raw",
    ] {
        let (m, _) = decode_all(&raw(f));
        assert_eq!(
            m[0],
            Message::RudeRejection(bytes::Bytes::from_static(b"Access Denied, go away.\n"))
        );
        assert!(matches!(m[1], Message::DisconnectNotice(_)));
    }
}

#[test]
fn client_commands_in_the_captures_parse_on_the_switch_side() {
    let summary = summary();
    for file in CLIENT2FS {
        let mut dec = CommandDecoder::default();
        let mut buf = BytesMut::from(&raw(file)[..]);
        let mut lines = Vec::new();
        while let Some(frame) = dec.decode(&mut buf).unwrap() {
            let cmd = Command::parse(&frame);
            // `foobar` is the capture's deliberately unknown command.
            assert!(
                cmd.is_ok() || frame.line == "foobar",
                "{file}: {:?}",
                frame.line
            );
            // Re-encoding what we parsed gives back the command line byte for byte.
            if let Ok(c) = cmd {
                let wire = c.to_bytes().unwrap();
                let first = wire.split(|&b| b == b'\n').next().unwrap();
                assert_eq!(String::from_utf8_lossy(first), frame.line, "{file}");
            }
            let mut shown = frame.line.clone();
            for h in frame.headers.iter() {
                shown.push_str(&format!(
                    " | {}: {}",
                    h.name(),
                    String::from_utf8_lossy(h.raw_value())
                ));
            }
            lines.push(shown);
        }
        assert!(buf.is_empty(), "{file}");
        let (stem, conn) = file
            .trim_end_matches(".client2fs.raw")
            .rsplit_once('.')
            .unwrap();
        let key = summary
            .as_object()
            .unwrap()
            .keys()
            .find(|k| k.starts_with(&format!("{stem}.")))
            .unwrap()
            .clone();
        let expected: Vec<String> = summary[&key]["connections"][conn]["C>S commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(lines, expected, "{file}");
    }
}

// ---- chunking --------------------------------------------------------------------------

/// Message boundaries of a stream: (start, end) byte offsets of each message.
fn boundaries(bytes: &[u8]) -> Vec<(usize, usize, Message)> {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(m) = codec.decode_message(&mut buf).unwrap() {
        let end = bytes.len() - buf.len();
        out.push((start, end, m));
        start = end;
    }
    out
}

#[test]
fn every_capture_split_at_every_byte_offset_decodes_the_same() {
    // The decoder holds no state between messages, so splitting the stream at offset k only
    // touches the message that spans k: feeding that message in two pieces at k is the same
    // as splitting the whole stream there, at a fraction of the cost.
    for file in FS2CLIENT {
        let bytes = raw(file);
        for (start, end, expected) in boundaries(&bytes) {
            for k in start + 1..end {
                let mut codec = EslCodec::default();
                let mut buf = BytesMut::from(&bytes[start..k]);
                assert!(
                    codec.decode_message(&mut buf).unwrap().is_none(),
                    "{file}@{k}: early message"
                );
                buf.extend_from_slice(&bytes[k..end]);
                let got = codec.decode_message(&mut buf).unwrap();
                assert_eq!(got.as_ref(), Some(&expected), "{file}@{k}");
                assert!(
                    buf.is_empty() || buf.iter().all(|&b| b == b'\n'),
                    "{file}@{k}"
                );
            }
        }
    }
}

#[test]
fn every_capture_fed_byte_by_byte_decodes_the_same() {
    for file in FS2CLIENT {
        let bytes = raw(file);
        let (expected, _) = decode_all(&bytes);
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &bytes {
            buf.extend_from_slice(std::slice::from_ref(b));
            while let Some(m) = codec.decode_message(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, expected, "{file}");
    }
}

#[test]
fn every_capture_in_random_chunkings_and_as_recorded_decodes_the_same() {
    // A small seeded generator keeps the test deterministic; the seed is printed on failure.
    let mut state: u64 = 0x5eed_e51c_0ffe_e000;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for file in FS2CLIENT {
        let bytes = raw(file);
        let (expected, _) = decode_all(&bytes);
        for round in 0..25 {
            let max_chunk = [1usize, 7, 64, 1500, 65536][round % 5];
            let mut codec = EslCodec::default();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            while pos < bytes.len() {
                let n = 1 + (next() as usize % max_chunk);
                let end = (pos + n).min(bytes.len());
                buf.extend_from_slice(&bytes[pos..end]);
                pos = end;
                while let Some(m) = codec.decode_message(&mut buf).unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(
                got, expected,
                "{file} round {round} (max chunk {max_chunk})"
            );
        }
    }
    // The real TCP chunking as the capture client saw it.
    for name in [
        "inbound-events-plain.bin",
        "inbound-events-json.bin",
        "inbound-events-xml.bin",
        "outbound-socket.bin",
        "mod-callcenter.txt",
    ] {
        let frames = transcript(name);
        let mut by_conn: BTreeMap<String, (EslCodec, BytesMut, Vec<Message>)> = BTreeMap::new();
        for f in frames.iter().filter(|f| f.from_switch) {
            let (codec, buf, out) = by_conn
                .entry(f.conn.clone())
                .or_insert_with(|| (EslCodec::default(), BytesMut::new(), Vec::new()));
            buf.extend_from_slice(&f.bytes);
            while let Some(m) = codec.decode_message(buf).unwrap() {
                out.push(m);
            }
        }
        for (conn, (_, buf, out)) in by_conn {
            assert!(buf.is_empty(), "{name}/{conn}");
            let stem = name.rsplit_once('.').unwrap().0;
            let (expected, _) = decode_all(&raw(&format!("{stem}.{conn}.fs2client.raw")));
            assert_eq!(out, expected, "{name}/{conn}");
        }
    }
}
