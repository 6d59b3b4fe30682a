//! Shared helpers for the cross-crate tests: reading the real FreeSWITCH captures.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/esl-captures` relative to the workspace root (CI clones main with shared/ beside
/// it); `SWITCHYARD_CAPTURES` overrides.
pub fn captures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SWITCHYARD_CAPTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/esl-captures")
}

/// The exact bytes FreeSWITCH sent on one connection of a capture.
pub fn raw(name: &str) -> Vec<u8> {
    let path = captures_dir().join("raw").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// One frame of an ESLCAP/1 transcript: a single socket read or write as the client saw it.
#[derive(Debug, Clone)]
pub struct CapFrame {
    pub conn: String,
    /// true: FreeSWITCH -> client.
    pub from_switch: bool,
    pub bytes: Vec<u8>,
}

/// Parses an ESLCAP/1 transcript (`.txt`/`.bin`).
pub fn transcript(name: &str) -> Vec<CapFrame> {
    let path = captures_dir().join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| pos + i);
        let line = std::str::from_utf8(&data[pos..end]).expect("transcript header is text");
        pos = end + 1;
        let Some(rest) = line.strip_prefix("@@ ") else {
            continue;
        };
        let mut conn = String::new();
        let mut from_switch = false;
        let mut len = 0usize;
        for field in rest.split(' ') {
            match field.split_once('=') {
                Some(("conn", v)) => conn = v.to_owned(),
                Some(("dir", v)) => from_switch = v == "S>C",
                Some(("len", v)) => len = v.parse().expect("len is a number"),
                _ => {}
            }
        }
        frames.push(CapFrame {
            conn,
            from_switch,
            bytes: data[pos..pos + len].to_vec(),
        });
        pos += len + 1;
    }
    frames
}

/// Every raw switch-to-client stream in the captures.
pub const FS2CLIENT: &[&str] = &[
    "inbound-auth-and-api.c1.fs2client.raw",
    "inbound-auth-and-api.c2.fs2client.raw",
    "inbound-events-json.c1.fs2client.raw",
    "inbound-events-plain.c1.fs2client.raw",
    "inbound-events-xml.c1.fs2client.raw",
    "inbound-rude-rejection.r1.fs2client.raw",
    "inbound-rude-rejection.r2.fs2client.raw",
    "mod-callcenter-json.c1.fs2client.raw",
    "mod-callcenter.c1.fs2client.raw",
    "outbound-socket-control.ctl.fs2client.raw",
    "outbound-socket.o1.fs2client.raw",
];

/// Every raw client-to-switch stream.
pub const CLIENT2FS: &[&str] = &[
    "inbound-auth-and-api.c1.client2fs.raw",
    "inbound-auth-and-api.c2.client2fs.raw",
    "inbound-events-json.c1.client2fs.raw",
    "inbound-events-plain.c1.client2fs.raw",
    "inbound-events-xml.c1.client2fs.raw",
    "inbound-rude-rejection.r2.client2fs.raw",
    "mod-callcenter-json.c1.client2fs.raw",
    "mod-callcenter.c1.client2fs.raw",
    "outbound-socket-control.ctl.client2fs.raw",
    "outbound-socket.o1.client2fs.raw",
];
