//! The HTTP kit over real HTTP on loopback: the live feed (snapshot, deltas, resume, tenant
//! isolation, resync of a slow subscriber, keep-alive, shutdown, many subscribers), and the
//! stack's behaviour where a socket matters (client-address rate limiting, body limits on the
//! wire). A tiny HTTP/1.1 client is written here (raw TCP, chunked decoding, SSE parsing), so
//! the test sees exactly the bytes a browser would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchyard_api::http::live::{self, LiveConfig, LiveHub, LiveMessage, SnapshotFn};
use switchyard_api::http::{ApiJson, HttpConfig, HttpKit, Metrics, Probes, StaticKeys, layers};
use switchyard_api::model::{Principal, Role, TenantId};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

const KEY_A: &str = "sk_test_tenant_a";
const KEY_B: &str = "sk_test_tenant_b";
const ROOT_KEY: &str = "sk_test_platform";
const A: TenantId = TenantId(Uuid::from_u128(0xA));
const B: TenantId = TenantId(Uuid::from_u128(0xB));

struct Server {
    addr: SocketAddr,
    hub: LiveHub,
    kit: HttpKit,
    snapshots: Arc<AtomicUsize>,
}

async fn start(http: HttpConfig, live_config: LiveConfig) -> Server {
    let keys = StaticKeys::new()
        .with(
            KEY_A,
            Principal {
                key_id: Uuid::from_u128(1),
                tenant: Some(A),
                role: Role::Supervisor,
                agent_id: None,
            },
        )
        .with(
            KEY_B,
            Principal {
                key_id: Uuid::from_u128(2),
                tenant: Some(B),
                role: Role::ReadOnly,
                agent_id: None,
            },
        )
        .with(
            ROOT_KEY,
            Principal {
                key_id: Uuid::from_u128(3),
                tenant: None,
                role: Role::PlatformAdmin,
                agent_id: None,
            },
        );
    let metrics = Metrics::new();
    let kit = HttpKit::new(http, Arc::new(keys), metrics.clone());
    let hub = LiveHub::new(live_config);
    let snapshots = Arc::new(AtomicUsize::new(0));
    let count = snapshots.clone();
    let snapshot: SnapshotFn = Arc::new(move |t: TenantId| {
        count.fetch_add(1, Ordering::SeqCst);
        json!({ "tenant": t.0, "calls_waiting": 0 })
    });
    let app = Router::new()
        .route(
            "/v1/echo",
            post(|ApiJson(v): ApiJson<Value>| async move { ApiJson(v) }),
        )
        .route("/v1/public", get(|| async { "hi" }))
        .merge(live::router(
            hub.clone(),
            snapshot,
            switchyard_api::ids::IdCodec::new(b"test"),
        ))
        .merge(metrics.router())
        .merge(Probes::new().router());
    let app = layers(app, &kit);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        addr,
        hub,
        kit,
        snapshots,
    }
}

async fn start_live(live_config: LiveConfig) -> Server {
    start(HttpConfig::default(), live_config).await
}

fn delta(tenant: TenantId, n: u64) -> LiveMessage {
    LiveMessage {
        tenant,
        kind: "agent.state_changed",
        data: json!({ "agent": n, "state": "ready" }),
    }
}

// ---- a minimal HTTP/1.1 client ----

#[derive(Debug)]
struct Head {
    status: u16,
    headers: HashMap<String, String>,
}

struct Conn {
    rd: BufReader<TcpStream>,
    /// Decoded body bytes not yet consumed.
    body: Vec<u8>,
    done: bool,
}

async fn open(addr: SocketAddr, request: &[u8]) -> (Head, Conn) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut rd = BufReader::new(stream);
    let mut line = String::new();
    rd.read_line(&mut line).await.unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        rd.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked");
    let mut conn = Conn {
        rd,
        body: Vec::new(),
        done: false,
    };
    if !chunked {
        let len: usize = headers
            .get("content-length")
            .map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; len];
        conn.rd.read_exact(&mut body).await.unwrap();
        conn.body = body;
        conn.done = true;
    }
    (Head { status, headers }, conn)
}

impl Conn {
    /// Reads one more chunk into `body`; false at the end of the body.
    async fn read_chunk(&mut self) -> bool {
        if self.done {
            return false;
        }
        let mut line = String::new();
        if self.rd.read_line(&mut line).await.unwrap() == 0 {
            self.done = true;
            return false;
        }
        let size = usize::from_str_radix(line.trim(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        self.rd.read_exact(&mut chunk).await.unwrap();
        if size == 0 {
            self.done = true;
            return false;
        }
        self.body.extend_from_slice(&chunk[..size]);
        true
    }

    async fn read_to_end(mut self) -> Vec<u8> {
        while self.read_chunk().await {}
        self.body
    }

    /// The next SSE block (up to a blank line), parsed; None when the stream ends.
    async fn next_sse(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.body.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.body.drain(..end + 2).collect();
                return Some(Sse::parse(std::str::from_utf8(&block).unwrap()));
            }
            let more = tokio::time::timeout(Duration::from_secs(5), self.read_chunk())
                .await
                .expect("the live feed went quiet");
            if !more {
                return None;
            }
        }
    }

    /// The next SSE block that is an event (skips `retry:` and keep-alive comments).
    async fn next_event(&mut self) -> Sse {
        loop {
            let sse = self.next_sse().await.expect("stream ended");
            if sse.event.is_some() {
                return sse;
            }
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Sse {
    id: Option<u64>,
    event: Option<String>,
    data: Option<Value>,
    comment: Option<String>,
    retry: Option<u64>,
}

impl Sse {
    fn parse(block: &str) -> Sse {
        let mut sse = Sse::default();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                sse.id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                sse.event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                sse.data = Some(serde_json::from_str(v).unwrap());
            } else if let Some(v) = line.strip_prefix("retry: ") {
                sse.retry = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix(':') {
                sse.comment = Some(v.trim().to_owned());
            } else if !line.is_empty() {
                panic!("unexpected SSE line {line:?}");
            }
        }
        sse
    }

    fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("")
    }
}

fn live_request(key: Option<&str>, last_event_id: Option<u64>) -> Vec<u8> {
    let mut r =
        String::from("GET /v1/live HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n");
    if let Some(k) = key {
        r.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(id) = last_event_id {
        r.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

async fn subscribe(server: &Server, key: &str, last_event_id: Option<u64>) -> Conn {
    let (head, conn) = open(server.addr, &live_request(Some(key), last_event_id)).await;
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.headers["content-type"], "text/event-stream");
    assert_eq!(head.headers["cache-control"], "no-cache");
    conn
}

/// Waits until the hub counts `n` subscribers (a subscription exists once its handler ran).
async fn until_subscribers(hub: &LiveHub, n: usize) {
    for _ in 0..500 {
        if hub.subscriber_count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{} subscribers, expected {n}", hub.subscriber_count());
}

async fn simple(addr: SocketAddr, request: String) -> (Head, Vec<u8>) {
    let (head, conn) = open(addr, request.as_bytes()).await;
    (head, conn.read_to_end().await)
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

// ---- the live feed ----

#[tokio::test]
async fn live_sends_a_snapshot_then_each_delta_with_its_seq_and_kind() {
    let server = start_live(LiveConfig::default()).await;
    let mut feed = subscribe(&server, KEY_A, None).await;
    let first = feed.next_sse().await.unwrap();
    assert_eq!(first.retry, Some(2000));
    let snap = feed.next_event().await;
    assert_eq!(snap.kind(), "snapshot");
    let s = snap.id.unwrap();
    assert_eq!(snap.data.as_ref().unwrap()["seq"], json!(s));
    assert_eq!(
        snap.data.as_ref().unwrap()["state"],
        json!({"tenant": A.0, "calls_waiting": 0})
    );

    let published: Vec<u64> = (1..=3).map(|n| server.hub.publish(delta(A, n))).collect();
    assert_eq!(published, vec![s + 1, s + 2, s + 3]);
    for (n, seq) in (1..=3).zip(published) {
        let e = feed.next_event().await;
        assert_eq!(e.id, Some(seq));
        assert_eq!(e.kind(), "agent.state_changed");
        assert_eq!(e.data, Some(json!({"agent": n, "state": "ready"})));
    }
}

#[tokio::test]
async fn live_resume_replays_exactly_the_missed_events_of_the_tenant() {
    let server = start_live(LiveConfig::default()).await;
    let mut feed = subscribe(&server, KEY_A, None).await;
    assert_eq!(feed.next_event().await.kind(), "snapshot");
    server.hub.publish(delta(A, 1));
    let seen = feed.next_event().await.id.unwrap();
    drop(feed);
    until_subscribers(&server.hub, 0).await;

    let mut missed = Vec::new();
    for (t, n) in [(A, 2), (B, 3), (A, 4), (B, 5), (A, 6)] {
        let seq = server.hub.publish(delta(t, n));
        if t == A {
            missed.push(seq);
        }
    }
    let snapshots_before = server.snapshots.load(Ordering::SeqCst);
    let mut feed = subscribe(&server, KEY_A, Some(seen)).await;
    for want in &missed {
        let e = feed.next_event().await;
        assert_eq!((e.kind(), e.id), ("agent.state_changed", Some(*want)));
    }
    let next = server.hub.publish(delta(A, 7));
    assert_eq!(feed.next_event().await.id, Some(next));
    assert_eq!(
        server.snapshots.load(Ordering::SeqCst),
        snapshots_before,
        "no snapshot taken"
    );
}

#[tokio::test]
async fn live_resume_from_an_id_the_ring_no_longer_holds_gets_a_fresh_snapshot() {
    let server = start_live(LiveConfig {
        ring_capacity: 8,
        ..LiveConfig::default()
    })
    .await;
    let old = server.hub.publish(delta(A, 0));
    for n in 1..=20 {
        server.hub.publish(delta(A, n));
    }
    let mut feed = subscribe(&server, KEY_A, Some(old)).await;
    let snap = feed.next_event().await;
    assert_eq!(snap.kind(), "snapshot");
    assert_eq!(snap.id, Some(server.hub.last_seq(A)));
    // A Last-Event-ID that is not a number is no error either: a snapshot.
    let request = b"GET /v1/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk_test_tenant_a\r\nLast-Event-ID: yesterday\r\n\r\n";
    let (head, mut feed) = open(server.addr, request).await;
    assert_eq!(head.status, 200);
    assert_eq!(feed.next_event().await.kind(), "snapshot");
}

#[tokio::test]
async fn live_tenant_a_never_sees_tenant_b() {
    let server = start_live(LiveConfig::default()).await;
    let mut a = subscribe(&server, KEY_A, None).await;
    let mut b = subscribe(&server, KEY_B, None).await;
    let snap_b = b.next_event().await;
    assert_eq!(snap_b.data.unwrap()["state"]["tenant"], json!(B.0));
    assert_eq!(a.next_event().await.kind(), "snapshot");

    for n in 0..5 {
        server.hub.publish(delta(B, n));
    }
    let only_a = server.hub.publish(delta(A, 100));
    let e = a.next_event().await;
    assert_eq!(
        (e.id, e.data.unwrap()["agent"].clone()),
        (Some(only_a), json!(100))
    );
    for n in 0..5 {
        assert_eq!(b.next_event().await.data.unwrap()["agent"], json!(n));
    }
    // And B's events are not replayed to A on resume.
    drop(a);
    let mut a = subscribe(&server, KEY_A, Some(only_a - 6)).await;
    assert_eq!(a.next_event().await.id, Some(only_a));
}

#[tokio::test]
async fn live_a_slow_subscriber_is_told_to_resync_and_gets_a_new_snapshot() {
    let server = start_live(LiveConfig {
        subscriber_buffer: 4,
        ..LiveConfig::default()
    })
    .await;
    let mut slow = subscribe(&server, KEY_A, None).await;
    assert_eq!(slow.next_event().await.kind(), "snapshot");
    // This test runs on one thread: while it publishes without yielding, the server cannot
    // write to the subscriber, which falls 50 events behind a 4-event buffer.
    for n in 0..50 {
        server.hub.publish(delta(A, n));
    }
    let resync = slow.next_event().await;
    assert_eq!(resync.kind(), "resync");
    assert_eq!(
        resync.id, None,
        "a resync does not move the client's Last-Event-ID"
    );
    let snap = slow.next_event().await;
    assert_eq!(snap.kind(), "snapshot");
    assert_eq!(snap.id, Some(server.hub.last_seq(A)));
    // Back in step: the hub kept going and the next delta arrives.
    let next = server.hub.publish(delta(A, 99));
    assert_eq!(slow.next_event().await.id, Some(next));
}

#[tokio::test]
async fn live_sends_keep_alive_comments_when_quiet() {
    let server = start_live(LiveConfig {
        keep_alive: Duration::from_millis(50),
        ..LiveConfig::default()
    })
    .await;
    let mut feed = subscribe(&server, KEY_A, None).await;
    assert_eq!(feed.next_event().await.kind(), "snapshot");
    let quiet = feed.next_sse().await.unwrap();
    assert_eq!(quiet.comment.as_deref(), Some("keep-alive"));
    assert_eq!(quiet.event, None);
}

#[tokio::test]
async fn live_needs_a_tenant_key() {
    let server = start_live(LiveConfig::default()).await;
    let (head, conn) = open(server.addr, &live_request(None, None)).await;
    assert_eq!(head.status, 401);
    assert_eq!(head.headers["www-authenticate"], "Bearer");
    assert_eq!(
        json_body(&conn.read_to_end().await)["error"]["code"],
        "unauthorized"
    );

    let (head, conn) = open(server.addr, &live_request(Some(ROOT_KEY), None)).await;
    assert_eq!(head.status, 403);
    assert_eq!(
        json_body(&conn.read_to_end().await)["error"]["code"],
        "forbidden"
    );
    assert_eq!(server.hub.subscriber_count(), 0);
}

#[tokio::test]
async fn live_over_the_subscriber_cap_is_503_json() {
    let server = start_live(LiveConfig {
        max_subscribers: 1,
        ..LiveConfig::default()
    })
    .await;
    let _first = subscribe(&server, KEY_A, None).await;
    until_subscribers(&server.hub, 1).await;
    let (head, conn) = open(server.addr, &live_request(Some(KEY_A), None)).await;
    assert_eq!(head.status, 503);
    assert!(head.headers.contains_key("retry-after"));
    assert_eq!(
        json_body(&conn.read_to_end().await)["error"]["code"],
        "unavailable"
    );
}

#[tokio::test]
async fn live_streams_end_when_the_hub_closes() {
    let server = start_live(LiveConfig::default()).await;
    let mut feed = subscribe(&server, KEY_A, None).await;
    assert_eq!(feed.next_event().await.kind(), "snapshot");
    server.hub.close();
    assert_eq!(
        feed.next_sse().await,
        None,
        "the body ends (graceful shutdown can finish)"
    );
    until_subscribers(&server.hub, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fans_out_to_many_subscribers() {
    const SUBSCRIBERS: usize = 300;
    let server = start(
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
        LiveConfig::default(),
    )
    .await;
    let mut feeds = Vec::new();
    for i in 0..SUBSCRIBERS {
        let key = if i % 2 == 0 { KEY_A } else { KEY_B };
        let mut feed = subscribe(&server, key, None).await;
        assert_eq!(feed.next_event().await.kind(), "snapshot");
        feeds.push((key, feed));
    }
    assert_eq!(server.hub.subscriber_count(), SUBSCRIBERS);
    let seq_a: Vec<u64> = (0..10).map(|n| server.hub.publish(delta(A, n))).collect();
    let seq_b: Vec<u64> = (0..10).map(|n| server.hub.publish(delta(B, n))).collect();
    let tasks: Vec<_> = feeds
        .into_iter()
        .map(|(key, mut feed)| {
            let want = if key == KEY_A {
                seq_a.clone()
            } else {
                seq_b.clone()
            };
            tokio::spawn(async move {
                for seq in want {
                    assert_eq!(feed.next_event().await.id, Some(seq));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

// ---- the stack, where a real socket matters ----

#[tokio::test]
async fn anonymous_clients_are_rate_limited_by_address_with_retry_after_then_recover() {
    let server = start(
        HttpConfig {
            rate_per_sec: 20,
            burst: 2,
            ..HttpConfig::default()
        },
        LiveConfig::default(),
    )
    .await;
    let get = || "GET /v1/public HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_owned();
    assert_eq!(simple(server.addr, get()).await.0.status, 200);
    assert_eq!(simple(server.addr, get()).await.0.status, 200);
    let (head, body) = simple(server.addr, get()).await;
    assert_eq!(head.status, 429);
    assert_eq!(head.headers["retry-after"], "1");
    assert_eq!(head.headers["content-type"], "application/json");
    assert_eq!(json_body(&body)["error"]["code"], "rate_limited");
    // Probes are exempt.
    let (head, _) = simple(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!(head.status, 200);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(simple(server.addr, get()).await.0.status, 200);
    assert_eq!(server.kit.limiter().len(), 1, "one bucket: 127.0.0.1");
}

#[tokio::test]
async fn an_oversized_body_on_a_kept_alive_connection_closes_it() {
    let server = start(
        HttpConfig {
            max_body_bytes: 1024,
            ..HttpConfig::default()
        },
        LiveConfig::default(),
    )
    .await;
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(4096));
    // No `Connection: close` from the client: the server must say it.
    let request = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let (head, body) = simple(server.addr, request).await;
    assert_eq!(head.status, 413);
    assert_eq!(json_body(&body)["error"]["code"], "payload_too_large");
    assert_eq!(
        head.headers.get("connection").map(String::as_str),
        Some("close"),
        "{head:?}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_json_on_the_wire() {
    let server = start(
        HttpConfig {
            max_body_bytes: 1024,
            ..HttpConfig::default()
        },
        LiveConfig::default(),
    )
    .await;
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(4096));
    let request = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let (head, body) = simple(server.addr, request).await;
    assert_eq!(head.status, 413);
    assert_eq!(json_body(&body)["error"]["code"], "payload_too_large");

    // Chunked, with no length announced: cut at the limit just the same.
    let request = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let (head, body) = simple(server.addr, request).await;
    assert_eq!(head.status, 413);
    assert_eq!(json_body(&body)["error"]["code"], "payload_too_large");

    let small = r#"{"x":1}"#;
    let request = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{small}",
        small.len()
    );
    let (head, body) = simple(server.addr, request).await;
    assert_eq!(head.status, 200);
    assert_eq!(json_body(&body), json!({"x": 1}));
}

#[tokio::test]
async fn responses_carry_the_request_id_and_security_headers_and_are_counted() {
    let server = start(HttpConfig::default(), LiveConfig::default()).await;
    let (head, _) = simple(
        server.addr,
        "GET /v1/public HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Request-Id: trace-77\r\n\r\n"
            .into(),
    )
    .await;
    assert_eq!(head.headers["x-request-id"], "trace-77");
    assert_eq!(head.headers["x-content-type-options"], "nosniff");
    assert_eq!(head.headers["x-frame-options"], "DENY");
    assert_eq!(head.headers["cache-control"], "no-store");

    let (head, body) = simple(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!(head.status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/v1/public",status="200"} 1"#),
        "{text}"
    );
}
