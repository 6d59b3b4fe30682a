//! Decode throughput of switchyard's ESL codec against the peers, over real FreeSWITCH 1.10 bytes.
//!
//! Run: `cargo bench --features bench-peers --bench esl_decode`
//! (`ESL_BENCH_MB=<n>` changes the corpus size, default 100; `ESL_BENCH_REPS=<n>` the
//! repetitions per case, default 3; the best repetition is reported; `ESL_BENCH_ONLY=<text>`
//! runs only the cases whose name contains it, e.g. under `valgrind --tool=callgrind`).
//!
//! Corpora, each the event messages of one capture repeated to at least `ESL_BENCH_MB` MB:
//! - `plain`: every `text/event-plain` message of `inbound-events-plain.c1.fs2client.raw`;
//! - `channel`: only its `CHANNEL_*` events;
//! - `json`: every `text/event-json` message of `inbound-events-json.c1.fs2client.raw`.
//!
//! Cases:
//! - `ceiling (memchr framing)`: find the blank line, read `Content-Length`, skip the body.
//!   Nothing is parsed; no decoder can beat it.
//! - `switchyard in-memory`: `EslCodec::decode_message` over the corpus fed in 64 KiB chunks (as
//!   socket reads would arrive), reading `Event-Name` and `Unique-ID` of every event.
//! - `switchyard loopback`: the same over TCP on 127.0.0.1 from the bench's own server thread,
//!   on a tokio current_thread runtime.
//! - `freeswitch-esl-tokio loopback`: its parser is crate-private, so the public `EslClient`
//!   connects to the server thread (auth handshake, then the corpus); its reader task and the
//!   consumer share one current_thread runtime; the consumer reads `Event-Name` and `Unique-ID`.
//! - `eslrs in-memory`: its codec is private but `ESLConnection::new` takes any
//!   `AsyncRead + AsyncWrite`, so it reads the corpus from memory in 64 KiB chunks; each event's
//!   body is parsed as its public API offers (`PlainEvent::try_from`, or `serde_json::Value`,
//!   which is exactly eslrs' `JsonEvent` behind its `json` feature) and the two headers read.
//! - `eslrs loopback`: the same over TCP.
//!
//! Loopback cases measure from the first corpus byte to the last event counted; the server
//! thread writes on the other core (there are two), so they are "one core for the decoder".

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use switchyard_esl::codec::{EslCodec, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

const CHUNK: usize = 64 * 1024;
const AUTH_REQUEST: &[u8] = b"Content-Type: auth/request\n\n";
const AUTH_OK: &[u8] = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n";

// ---- corpus ------------------------------------------------------------------------------

struct Corpus {
    name: &'static str,
    bytes: Arc<Vec<u8>>,
    events: u64,
}

fn captures_raw(file: &str) -> Vec<u8> {
    let dir = std::env::var("ESL_CAPTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/esl-captures").into());
    let path = format!("{dir}/raw/{file}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Splits raw wire bytes into whole messages (header block + body), independently of the codec.
fn split_messages(raw: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let Some(end) = memchr::memmem::find(&raw[pos..], b"\n\n") else {
            break;
        };
        let head = &raw[pos..pos + end];
        let body_len = content_length(head).unwrap_or(0);
        let total = end + 2 + body_len;
        if pos + total > raw.len() {
            break;
        }
        out.push(&raw[pos..pos + total]);
        pos += total;
    }
    out
}

fn content_length(head: &[u8]) -> Option<usize> {
    let i = memchr::memmem::find(head, b"Content-Length: ")?;
    let v = &head[i + 16..];
    let n = v.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&v[..n]).ok()?.parse().ok()
}

fn content_type(head: &[u8]) -> &[u8] {
    let Some(i) = memchr::memmem::find(head, b"Content-Type: ") else {
        return b"";
    };
    let v = &head[i + 14..];
    &v[..memchr::memchr(b'\n', v).unwrap_or(v.len())]
}

fn build_corpus(
    name: &'static str,
    file: &str,
    ct: &[u8],
    keep: impl Fn(&[u8]) -> bool,
    target: usize,
) -> Corpus {
    let raw = captures_raw(file);
    let msgs: Vec<&[u8]> = split_messages(&raw)
        .into_iter()
        .filter(|m| {
            let end = memchr::memmem::find(m, b"\n\n").unwrap_or(m.len());
            content_type(&m[..end]) == ct && keep(m)
        })
        .collect();
    assert!(!msgs.is_empty(), "{name}: no messages");
    let one: usize = msgs.iter().map(|m| m.len()).sum();
    let reps = target.div_ceil(one);
    let mut bytes = Vec::with_capacity(one * reps);
    for _ in 0..reps {
        for m in &msgs {
            bytes.extend_from_slice(m);
        }
    }
    Corpus {
        name,
        bytes: Arc::new(bytes),
        events: (msgs.len() * reps) as u64,
    }
}

// ---- cases -------------------------------------------------------------------------------

/// Touches what a consumer reads of every event; returns something to keep it alive.
#[inline]
fn touch(name: Option<&str>, uuid: Option<&str>) -> usize {
    name.map_or(0, str::len) + uuid.map_or(0, str::len)
}

fn ceiling(data: &[u8]) -> u64 {
    let finder = memchr::memmem::Finder::new(b"\n\n");
    let cl = memchr::memmem::Finder::new(b"Content-Length: ");
    let mut pos = 0;
    let mut n = 0;
    while let Some(end) = finder.find(&data[pos..]) {
        let head = &data[pos..pos + end];
        let mut body = 0usize;
        if let Some(i) = cl.find(head) {
            for &d in &head[i + 16..] {
                if !d.is_ascii_digit() {
                    break;
                }
                body = body * 10 + usize::from(d - b'0');
            }
        }
        pos += end + 2 + body;
        n += 1;
        if pos >= data.len() {
            break;
        }
    }
    n
}

fn ours_in_memory(data: &[u8]) -> u64 {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::with_capacity(2 * CHUNK);
    let mut n = 0;
    let mut acc = 0;
    for chunk in data.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode_message(&mut buf).expect("corpus decodes") {
            if let Message::Event(e) = m {
                acc += touch(e.name().as_deref(), e.unique_id().as_deref());
                n += 1;
            }
        }
    }
    black_box(acc);
    n
}

/// Serves one connection: auth/request, waits for the `auth` command, accepts it, then writes
/// the corpus and closes.
fn spawn_server(corpus: Arc<Vec<u8>>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).ok();
        s.write_all(AUTH_REQUEST).expect("write auth/request");
        let mut got = Vec::new();
        let mut b = [0u8; 512];
        // eslrs ends its commands with "\r\n\r\n", everyone else with "\n\n".
        while memchr::memmem::find(&got, b"\n\n").is_none()
            && memchr::memmem::find(&got, b"\n\r\n").is_none()
        {
            let k = s.read(&mut b).expect("read auth");
            assert!(k > 0, "client left before auth");
            got.extend_from_slice(&b[..k]);
        }
        s.write_all(AUTH_OK).expect("write auth reply");
        for chunk in corpus.chunks(1 << 20) {
            if s.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Wait for the client to close, so the socket is not reset under unread bytes.
        let _ = s.read(&mut b);
    });
    (port, handle)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn ours_loopback(corpus: &Arc<Vec<u8>>) -> (u64, Duration) {
    let (port, server) = spawn_server(corpus.clone());
    let rt = current_thread();
    let out = rt.block_on(async move {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::with_capacity(2 * CHUNK);
        // Handshake.
        loop {
            if let Some(m) = codec.decode_message(&mut buf).expect("decodes") {
                assert_eq!(m, Message::AuthRequest);
                break;
            }
            s.read_buf(&mut buf).await.expect("read");
        }
        s.write_all(b"auth ClueCon\n\n").await.expect("write auth");
        loop {
            if let Some(m) = codec.decode_message(&mut buf).expect("decodes") {
                assert!(matches!(m, Message::CommandReply(ref r) if r.is_ok()));
                break;
            }
            s.read_buf(&mut buf).await.expect("read");
        }
        let start = Instant::now();
        let mut n = 0;
        let mut acc = 0;
        loop {
            while let Some(m) = codec.decode_message(&mut buf).expect("corpus decodes") {
                if let Message::Event(e) = m {
                    acc += touch(e.name().as_deref(), e.unique_id().as_deref());
                    n += 1;
                }
            }
            buf.reserve(CHUNK);
            if s.read_buf(&mut buf).await.expect("read") == 0 {
                break;
            }
        }
        let took = start.elapsed();
        black_box(acc);
        (n, took)
    });
    server.join().expect("server thread");
    out
}

fn fsesl_loopback(corpus: &Arc<Vec<u8>>) -> (u64, Duration) {
    use freeswitch_esl_tokio::{EslClient, EslConnectOptions, EventOverflow};
    let (port, server) = spawn_server(corpus.clone());
    let rt = current_thread();
    let out = rt.block_on(async move {
        // Block (never drop) when the consumer lags: every event must be counted.
        let opts = EslConnectOptions::new()
            .with_event_queue_size(4096)
            .with_event_overflow(EventOverflow::BlockFor(Duration::from_secs(60)));
        let (client, mut events) =
            EslClient::connect_with_options("127.0.0.1", port, "ClueCon", opts)
                .await
                .expect("freeswitch-esl-tokio connects");
        let start = Instant::now();
        let mut n = 0;
        let mut acc = 0;
        while let Some(item) = events.recv().await {
            if let Ok(ev) = item {
                acc += touch(ev.header_str("Event-Name"), ev.header_str("Unique-ID"));
                n += 1;
            }
        }
        let took = start.elapsed();
        assert_eq!(client.dropped_event_count(), 0);
        black_box(acc);
        drop(client);
        (n, took)
    });
    server.join().expect("server thread");
    out
}

/// Consumes one eslrs event the way its public API allows.
fn eslrs_touch(e: eslrs::event::Event, json: bool) -> Option<usize> {
    if json {
        if e.get_content_type() != Some("text/event-json") {
            return None;
        }
        let body = e.get_body()?.clone();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json event");
        Some(touch(v["Event-Name"].as_str(), v["Unique-ID"].as_str()))
    } else {
        if !e.is_plain_event() {
            return None;
        }
        let Ok(p) = eslrs::event::PlainEvent::try_from(e);
        Some(touch(p.get_header("Event-Name"), p.get_header("Unique-ID")))
    }
}

/// An in-memory stream that hands out the corpus in 64 KiB reads and swallows writes.
struct MemStream {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl AsyncRead for MemStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(CHUNK).min(self.data.len() - self.pos);
        let pos = self.pos;
        buf.put_slice(&self.data[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn eslrs_in_memory(corpus: &Arc<Vec<u8>>, json: bool) -> u64 {
    let rt = current_thread();
    rt.block_on(async {
        let mut conn = eslrs::ESLConnection::new(MemStream {
            data: corpus.clone(),
            pos: 0,
        });
        let mut n = 0;
        let mut acc = 0;
        while let Ok(e) = conn.recv().await {
            if let Some(t) = eslrs_touch(e, json) {
                acc += t;
                n += 1;
            }
        }
        black_box(acc);
        n
    })
}

fn eslrs_loopback(corpus: &Arc<Vec<u8>>, json: bool) -> (u64, Duration) {
    let (port, server) = spawn_server(corpus.clone());
    let rt = current_thread();
    let out = rt.block_on(async move {
        let mut conn = eslrs::Inbound::connect(("127.0.0.1", port), "ClueCon")
            .await
            .expect("eslrs connects");
        let start = Instant::now();
        let mut n = 0;
        let mut acc = 0;
        while let Ok(e) = conn.recv().await {
            if let Some(t) = eslrs_touch(e, json) {
                acc += t;
                n += 1;
            }
        }
        let took = start.elapsed();
        black_box(acc);
        (n, took)
    });
    server.join().expect("server thread");
    out
}

// ---- harness -----------------------------------------------------------------------------

struct Row {
    corpus: &'static str,
    case: &'static str,
    peer: bool,
    ceiling: bool,
    secs: f64,
    events: u64,
    bytes: usize,
}

fn best_of(reps: usize, expect: u64, mut f: impl FnMut() -> (u64, Duration)) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let (n, d) = f();
        assert_eq!(n, expect, "every event counted");
        best = best.min(d.as_secs_f64());
    }
    best
}

fn timed(f: impl FnOnce() -> u64) -> (u64, Duration) {
    let t = Instant::now();
    let n = f();
    (n, t.elapsed())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter.
    let mb: usize = std::env::var("ESL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let reps: usize = std::env::var("ESL_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let target = mb * 1_000_000;

    // (corpus, capture file, content type, which events the corpus keeps)
    type Spec<'a> = (&'a str, &'a str, &'a [u8], fn(&[u8]) -> bool);
    let specs: [Spec; 3] = [
        (
            "plain",
            "inbound-events-plain.c1.fs2client.raw",
            b"text/event-plain",
            |_| true,
        ),
        (
            "channel",
            "inbound-events-plain.c1.fs2client.raw",
            b"text/event-plain",
            |m| memchr::memmem::find(m, b"\nEvent-Name: CHANNEL_").is_some(),
        ),
        (
            "json",
            "inbound-events-json.c1.fs2client.raw",
            b"text/event-json",
            |_| true,
        ),
    ];

    let mut rows = Vec::new();
    for (name, file, ct, keep) in specs {
        let c = build_corpus(name, file, ct, keep, target);
        let json = name == "json";
        let len = c.bytes.len();
        eprintln!(
            "corpus {name}: {} events, {:.1} MB, {:.0} B/event",
            c.events,
            len as f64 / 1e6,
            len as f64 / c.events as f64
        );
        let mut push = |case, peer, ceiling, secs| {
            eprintln!("  {case:<32} {secs:.3} s");
            rows.push(Row {
                corpus: c.name,
                case,
                peer,
                ceiling,
                secs,
                events: c.events,
                bytes: len,
            })
        };
        let data = c.bytes.clone();
        let only = std::env::var("ESL_BENCH_ONLY").unwrap_or_default();
        let want = |case: &str| case.contains(only.as_str());
        if want("ceiling (memchr framing)") {
            push(
                "ceiling (memchr framing)",
                false,
                true,
                best_of(reps, c.events, || timed(|| ceiling(black_box(&data)))),
            );
        }
        if want("switchyard in-memory") {
            push(
                "switchyard in-memory",
                false,
                false,
                best_of(reps, c.events, || {
                    timed(|| ours_in_memory(black_box(&data)))
                }),
            );
        }
        if want("switchyard loopback") {
            push(
                "switchyard loopback",
                false,
                false,
                best_of(reps, c.events, || ours_loopback(&data)),
            );
        }
        if want("freeswitch-esl-tokio loopback") {
            push(
                "freeswitch-esl-tokio loopback",
                true,
                false,
                best_of(reps, c.events, || fsesl_loopback(&data)),
            );
        }
        if want("eslrs in-memory") {
            push(
                "eslrs in-memory",
                true,
                false,
                best_of(reps, c.events, || timed(|| eslrs_in_memory(&data, json))),
            );
        }
        if want("eslrs loopback") {
            push(
                "eslrs loopback",
                true,
                false,
                best_of(reps, c.events, || eslrs_loopback(&data, json)),
            );
        }
    }

    println!();
    println!("| corpus | case | events/s | MB/s | vs ceiling | vs fastest peer |");
    println!("|---|---|---:|---:|---:|---:|");
    for corpus in ["plain", "channel", "json"] {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.corpus == corpus).collect();
        let ceil = rs
            .iter()
            .find(|r| r.ceiling)
            .map(|r| r.secs)
            .unwrap_or(f64::NAN);
        let peer = rs
            .iter()
            .filter(|r| r.peer)
            .map(|r| r.secs)
            .fold(f64::INFINITY, f64::min);
        for r in rs {
            let eps = r.events as f64 / r.secs;
            let mbs = r.bytes as f64 / 1e6 / r.secs;
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.2}x slower | {:.2}x |",
                r.corpus,
                r.case,
                eps,
                mbs,
                r.secs / ceil,
                peer / r.secs,
            );
        }
    }
    println!();
    println!(
        "(best of {reps}; corpus >= {mb} MB each; 'vs ceiling' = time / ceiling time; 'vs fastest \
         peer' = fastest peer time / time, >1 is faster than every peer)"
    );
}
