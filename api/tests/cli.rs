//! The `switchyard esl` CLI, run as a process against a FreeSWITCH stand-in on loopback (plain
//! threads and blocking sockets: the binary is the async part under test).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command as Process, Output};
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use switchyard_esl::codec::{
    Command, CommandDecoder, DisconnectNotice, Event, EventFormat, Headers, Message, Reply,
};

const CORE: &str = "6b3bea01-13d9-44e6-9ba3-d808481ca295";
const STATUS_BODY: &str = "UP 0 years, 0 days, 0 hours, 0 minutes, 5 seconds, 84 milliseconds, 427 microseconds\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n0 session(s) since startup\n0 session(s) - peak 0, last 5min 0 \n0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/99.70\nCurrent Stack Size/Max 240K/8192K\n";
const GOODBYE: &[u8] = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// Events the peer sends after `event ...`: a plain one, one with values that need encoding and
/// an ARRAY header, and a BACKGROUND_JOB with a body.
fn scenario(format: EventFormat) -> Vec<Event> {
    let common = |name: &str, seq: &str, extra: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = [
            ("Event-Name", name),
            ("Core-UUID", CORE),
            ("FreeSWITCH-Hostname", "vm"),
            ("FreeSWITCH-IPv6", "fd00::2"),
            ("Event-Date-Local", "2026-11-21 15:42:36"),
            ("Event-Sequence", seq),
        ]
        .iter()
        .chain(extra)
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        Headers::from_pairs(pairs)
    };
    vec![
        Event::from_parts(
            format,
            common("CHANNEL_CREATE", "1", &[("Unique-ID", "u-1")]),
            None,
        ),
        Event::from_parts(
            format,
            common(
                "CHANNEL_ANSWER",
                "2",
                &[
                    ("Caller-Caller-ID-Name", "Ren\u{e9}e \"100%\" + more"),
                    ("variable_codecs", "ARRAY::PCMU|:PCMA"),
                ],
            ),
            None,
        ),
        Event::from_parts(
            format,
            common(
                "BACKGROUND_JOB",
                "3",
                &[
                    ("Job-UUID", "a30e15b7-9659-4b04-b1c6-6ccc5026c178"),
                    ("Job-Command", "originate"),
                ],
            ),
            Some(Bytes::from_static(
                b"+OK 58db052c-cfa4-424d-9d3a-b6ad9cc2da2d\n",
            )),
        ),
    ]
}

/// Serves one connection the way FreeSWITCH does. After the `event` command it sends the
/// scenario's events in the subscribed format and closes (with the goodbye notice).
fn spawn_peer(password: &'static str) -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut lines = Vec::new();
        let send = |sock: &mut TcpStream, m: Message| {
            let mut buf = BytesMut::new();
            m.encode(&mut buf);
            let _ = sock.write_all(&buf);
        };
        let reply = |t: &str| Message::CommandReply(Reply::new(t));
        send(&mut sock, Message::AuthRequest);
        let mut decoder = CommandDecoder::default();
        let mut buf = BytesMut::new();
        loop {
            let frame = match decoder.decode(&mut buf).unwrap() {
                Some(f) => f,
                None => {
                    let mut chunk = [0u8; 4096];
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => return lines,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                }
            };
            lines.push(frame.line.clone());
            match Command::parse(&frame) {
                Ok(Command::Auth { password: p }) if p == password => {
                    send(&mut sock, reply("+OK accepted"));
                }
                Ok(Command::Auth { .. }) => {
                    send(&mut sock, reply("-ERR invalid"));
                    send(&mut sock, goodbye());
                    return lines;
                }
                Ok(Command::Api { command }) => {
                    let body = match command.as_str() {
                        "status" => STATUS_BODY.to_owned(),
                        "global_getvar core_uuid" => CORE.to_owned(),
                        other => format!("-ERR {other} Command not found!\n"),
                    };
                    send(&mut sock, Message::ApiResponse(Bytes::from(body)));
                }
                Ok(Command::Event { format, events }) => {
                    let text = format!("+OK event listener enabled {}", format.as_str());
                    send(&mut sock, reply(&text));
                    if events.names.iter().any(|n| n == "ALL") {
                        for ev in scenario(format) {
                            send(&mut sock, Message::Event(ev));
                        }
                        send(&mut sock, goodbye());
                        return lines;
                    }
                }
                Ok(Command::Exit) => {
                    send(&mut sock, reply("+OK bye"));
                    send(&mut sock, goodbye());
                    return lines;
                }
                _ => send(&mut sock, reply("-ERR command not found")),
            }
        }
    });
    (port, handle)
}

fn goodbye() -> Message {
    Message::DisconnectNotice(DisconnectNotice::new(&[], GOODBYE))
}

fn switchyard(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run switchyard")
}

/// `switchyard` with the Event Socket password in its environment.
fn switchyard_with_password(args: &[&str], password: &str) -> Output {
    Process::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("SWITCHYARD_ESL_PASSWORD", password)
        .output()
        .expect("run switchyard")
}

#[test]
fn no_command_takes_a_secret_as_a_flag() {
    for args in [
        &["esl", "api", "--password", "x", "status"][..],
        &["fakeswitch", "--password", "x"],
        &["serve", "--esl-password", "x"],
        &[
            "contacts",
            "import",
            "--campaign",
            "1",
            "--key",
            "x",
            "f.csv",
        ],
    ] {
        let out = switchyard(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
}

fn events_once(format: &str) -> (Output, Vec<String>) {
    let (port, peer) = spawn_peer("ClueCon");
    let port = port.to_string();
    let out = switchyard(&[
        "esl", "events", "--port", &port, "--format", format, "--once",
    ]);
    (out, peer.join().unwrap())
}

#[test]
fn events_in_plain_json_and_xml_print_identical_json_lines() {
    let mut outputs = Vec::new();
    for format in ["plain", "json", "xml"] {
        let (out, lines) = events_once(format);
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines.last().unwrap(), &format!("event {format} ALL"));
        outputs.push(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);

    let lines: Vec<&str> = outputs[0].lines().collect();
    assert_eq!(lines.len(), 3, "{}", outputs[0]);
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[0]["Event-Name"], "CHANNEL_CREATE");
    assert_eq!(v[1]["Caller-Caller-ID-Name"], "Ren\u{e9}e \"100%\" + more");
    assert_eq!(v[1]["variable_codecs"], serde_json::json!(["PCMU", "PCMA"]));
    assert_eq!(v[2]["_body"], "+OK 58db052c-cfa4-424d-9d3a-b6ad9cc2da2d\n");
}

#[test]
fn notices_go_to_stderr_not_stdout() {
    let (out, _) = events_once("json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("Core-UUID {CORE}")), "{stderr}");
    assert!(stderr.contains("disconnected"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|l| l.starts_with('{')), "{stdout}");
}

#[test]
fn api_prints_the_response_body_exactly() {
    let (port, peer) = spawn_peer("ClueCon");
    let port = port.to_string();
    let out = switchyard_with_password(&["esl", "api", "--port", &port, "status"], "ClueCon");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), STATUS_BODY);
    let lines = peer.join().unwrap();
    assert_eq!(lines.first().unwrap(), "auth ClueCon");
    assert!(lines.contains(&"api status".to_owned()), "{lines:?}");
    assert_eq!(lines.last().unwrap(), "exit");
}

#[test]
fn wrong_password_is_a_clear_error_and_a_failure_status() {
    let (port, peer) = spawn_peer("ClueCon");
    let port = port.to_string();
    // The password from a file, as from the environment above: never on the command line.
    let dir = std::env::temp_dir().join(format!("switchyard-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("esl-password");
    std::fs::write(&file, "nope\n").unwrap();
    let out = switchyard(&[
        "esl",
        "api",
        "--port",
        &port,
        "--password-file",
        file.to_str().unwrap(),
        "status",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authentication rejected") && stderr.contains("-ERR invalid"),
        "{stderr}"
    );
    assert_eq!(peer.join().unwrap(), ["auth nope"]);
}
