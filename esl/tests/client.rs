//! The inbound client against a FreeSWITCH stand-in on loopback (`peer`).

mod peer;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use peer::{CORE_A, CORE_B, Opts, Peer, PeerConn, STATUS_BODY};
use switchyard_esl::EslError;
use switchyard_esl::client::{Auth, BackoffConfig, Client, ClientConfig, ClientEvent, ClientPool};
use switchyard_esl::codec::{DecoderLimits, EventFormat, EventSet, Message};

// ---- helpers ---------------------------------------------------------------------------------

fn config(peer: &Peer) -> ClientConfig {
    let mut c = ClientConfig::new(peer.addr.clone(), Auth::Password("ClueCon".into()));
    c.backoff = BackoffConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(100),
        seed: Some(1),
    };
    c
}

/// The next stream item; generous enough for virtual time, where it costs nothing.
async fn next(events: &mut switchyard_esl::client::EventStream) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(3600), events.recv())
        .await
        .expect("no event within the deadline")
        .expect("the stream ended")
}

async fn expect_connected(events: &mut switchyard_esl::client::EventStream) -> (String, bool) {
    match next(events).await {
        ClientEvent::Connected {
            core_uuid,
            switch_restarted,
        } => (core_uuid, switch_restarted),
        other => panic!("expected Connected, got {other:?}"),
    }
}

async fn expect_disconnected(events: &mut switchyard_esl::client::EventStream) -> EslError {
    match next(events).await {
        ClientEvent::Disconnected { reason } => reason,
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

async fn expect_event_seq(events: &mut switchyard_esl::client::EventStream) -> u64 {
    match next(events).await {
        ClientEvent::Event(e) => e.sequence().expect("Event-Sequence"),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Runs `fut` in virtual time. Tokio's paused clock jumps to the next timer whenever no task
/// is runnable, and a task waiting for a loopback read counts as not runnable: so connecting
/// (real socket I/O racing the connect and heartbeat timers) happens in real time, and only the
/// idle stretch whose length matters is paused. `start_paused` would fire those timers while
/// the handshake's bytes are in flight.
async fn in_virtual_time<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::pause();
    let out = fut.await;
    tokio::time::resume();
    out
}

fn setup_lines(event_line: &str) -> Vec<String> {
    vec![
        "auth ClueCon".into(),
        "api global_getvar core_uuid".into(),
        event_line.into(),
    ]
}

/// A peer whose first connection runs `first` after the handshake and whose later ones are
/// standard.
async fn peer_with_first<F, Fut>(opts: Opts, first: F) -> Peer
where
    F: Fn(PeerConn, Opts) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let first = std::sync::Arc::new(first);
    Peer::start(move |mut c| {
        let o = opts.clone();
        let first = std::sync::Arc::clone(&first);
        async move {
            if !c.handshake(&o).await {
                return;
            }
            if c.index == 0 {
                first(c, o).await;
            } else {
                c.serve(&o).await;
            }
        }
    })
    .await
}

// ---- connecting ------------------------------------------------------------------------------

#[tokio::test]
async fn authenticates_subscribes_and_returns_the_api_status_body() {
    let peer = Peer::standard(Opts::default()).await;
    let (client, mut events) = Client::connect(config(&peer)).await.unwrap();
    assert_eq!(
        expect_connected(&mut events).await,
        (CORE_A.to_owned(), false)
    );
    let body = client.api("status").await.unwrap();
    assert_eq!(body, Bytes::from_static(STATUS_BODY.as_bytes()));
    let mut want = setup_lines("event plain BACKGROUND_JOB HEARTBEAT");
    want.push("api status".into());
    assert_eq!(peer.commands(0), want);
}

#[tokio::test]
async fn userauth_sends_user_and_password() {
    let peer = Peer::standard(Opts::default()).await;
    let mut cfg = config(&peer);
    cfg.auth = Auth::User {
        user: "agent@default".into(),
        password: "ClueCon".into(),
    };
    let (client, _events) = Client::connect(cfg).await.unwrap();
    client.api("status").await.unwrap();
    assert_eq!(peer.commands(0)[0], "userauth agent@default:ClueCon");
}

#[tokio::test]
async fn wrong_password_is_auth_failed_and_never_retried() {
    let peer = Peer::standard(Opts::default()).await;
    let mut cfg = config(&peer);
    cfg.auth = Auth::Password("WrongPassword".into());
    let err = Client::connect(cfg).await.unwrap_err();
    assert!(
        matches!(&err, EslError::AuthFailed { reply } if reply == "-ERR invalid"),
        "{err:?}"
    );
    in_virtual_time(tokio::time::sleep(Duration::from_secs(120))).await;
    assert_eq!(peer.accepted(), 1);
}

#[tokio::test]
async fn password_refused_on_reconnect_ends_the_stream_with_auth_failed() {
    // The first connection is accepted and then dropped; the switch's password changed since.
    let peer = Peer::start(|mut c| async move {
        let o = Opts {
            password: if c.index == 0 { "ClueCon" } else { "Changed" },
            ..Opts::default()
        };
        if c.handshake(&o).await && c.index == 0 {
            c.serve_setup(&o).await;
        }
    })
    .await;
    let (_client, mut events) = Client::connect(config(&peer)).await.unwrap();
    expect_connected(&mut events).await;
    assert!(matches!(
        expect_disconnected(&mut events).await,
        EslError::ConnectionClosed
    ));
    let end = tokio::time::timeout(Duration::from_secs(60), events.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert!(matches!(
        events.take_error(),
        Some(EslError::AuthFailed { .. })
    ));
    in_virtual_time(tokio::time::sleep(Duration::from_secs(120))).await;
    assert_eq!(peer.accepted(), 2);
}

#[tokio::test]
async fn acl_rude_rejection_is_access_denied() {
    let peer = Peer::start(|mut c| async move {
        // As captured: rejection, goodbye notice, close; no auth/request.
        c.send_raw(
            b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n",
        )
        .await;
        c.goodbye().await;
    })
    .await;
    let err = Client::connect(config(&peer)).await.unwrap_err();
    assert!(
        matches!(&err, EslError::AccessDenied { message } if message == "Access Denied, go away."),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_returned_by_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let cfg = ClientConfig::new(addr, Auth::Password("ClueCon".into()));
    assert!(matches!(
        Client::connect(cfg).await.unwrap_err(),
        EslError::Io(_)
    ));
}

// ---- bgapi -----------------------------------------------------------------------------------

#[tokio::test]
async fn ten_thousand_concurrent_bgapi_jobs_resolve_by_job_uuid_in_shuffled_order() {
    const JOBS: usize = 10_000;
    let peer = Peer::start(|mut c| async move {
        let o = Opts {
            bgapi_results: false,
            ..Opts::default()
        };
        if !c.handshake(&o).await {
            return;
        }
        let mut jobs = Vec::new();
        while jobs.len() < JOBS {
            let Some(f) = c.recv().await else { return };
            if let Some(cmd) = f.line.strip_prefix("bgapi ") {
                let job = f
                    .headers
                    .get_str("Job-UUID")
                    .expect("Job-UUID")
                    .into_owned();
                jobs.push((job, cmd.to_owned()));
            }
            c.answer(&o, &f).await;
        }
        // Fisher-Yates with a fixed xorshift, so a failure replays.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in (1..jobs.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            jobs.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for (job, cmd) in &jobs {
            let ev = c.job_event(CORE_A, job, cmd);
            c.feed(Message::Event(ev)).await;
        }
        c.flush().await;
        c.serve(&o).await;
    })
    .await;
    let (client, _events) = Client::connect(config(&peer)).await.unwrap();
    let results = join_all((0..JOBS).map(|i| {
        let client = client.clone();
        async move { (i, client.bgapi(&format!("echo job-{i}")).await) }
    }))
    .await;
    let mut seen = HashMap::new();
    for (i, r) in results {
        let r = r.unwrap_or_else(|e| panic!("job {i}: {e}"));
        assert!(r.is_ok());
        assert_eq!(r.body_str(), format!("+OK echo job-{i}\n"));
        assert_eq!(r.event().job_uuid().as_deref(), Some(r.job_uuid()));
        assert!(seen.insert(r.job_uuid().to_owned(), i).is_none());
    }
    assert_eq!(seen.len(), JOBS);
}

#[tokio::test]
async fn bgapi_without_background_job_times_out_and_the_connection_keeps_working() {
    let peer = Peer::standard(Opts {
        bgapi_results: false,
        ..Opts::default()
    })
    .await;
    let mut cfg = config(&peer);
    cfg.bgapi_timeout = Duration::from_secs(30);
    let (client, _events) = Client::connect(cfg).await.unwrap();
    let err = in_virtual_time(client.bgapi("originate loopback/7001 &park()"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EslError::Timeout { what: "BACKGROUND_JOB", after } if after == Duration::from_secs(30)),
        "{err:?}"
    );
    assert_eq!(client.api("status").await.unwrap(), STATUS_BODY.as_bytes());
}

#[tokio::test]
async fn bgapi_accepted_before_a_reconnect_still_resolves_on_the_same_switch() {
    // Connection 0 accepts the job and drops; connection 1 (same Core-UUID) delivers it, as
    // FreeSWITCH delivers BACKGROUND_JOB to every subscribed listener.
    let job_uuid = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, String)>));
    let shared = std::sync::Arc::clone(&job_uuid);
    let peer = Peer::start(move |mut c| {
        let shared = std::sync::Arc::clone(&shared);
        async move {
            let o = Opts {
                bgapi_results: false,
                ..Opts::default()
            };
            if !c.handshake(&o).await {
                return;
            }
            if c.index == 0 {
                while let Some(f) = c.recv().await {
                    c.answer(&o, &f).await;
                    if let Some(cmd) = f.line.strip_prefix("bgapi ") {
                        let job = f.headers.get_str("Job-UUID").unwrap().into_owned();
                        *shared.lock().unwrap() = Some((job, cmd.to_owned()));
                        return;
                    }
                }
            } else {
                c.serve_setup(&o).await;
                let (job, cmd) = shared.lock().unwrap().clone().expect("job seen");
                let ev = c.job_event(CORE_A, &job, &cmd);
                c.send(Message::Event(ev)).await;
                c.serve(&o).await;
            }
        }
    })
    .await;
    let (client, _events) = Client::connect(config(&peer)).await.unwrap();
    let r = client
        .bgapi("originate loopback/7001 &park()")
        .await
        .unwrap();
    assert_eq!(r.body_str(), "+OK originate loopback/7001 &park()\n");
    assert_eq!(peer.accepted(), 2);
}

// ---- losing the connection -------------------------------------------------------------------

#[tokio::test]
async fn reconnect_reapplies_auth_events_and_filters_including_runtime_changes() {
    let peer = peer_with_first(Opts::default(), |mut c, o| async move {
        c.serve_until(&o, "filter Caller-Context default").await;
        // Drop the socket without a word.
    })
    .await;
    let mut cfg = config(&peer)
        .events("CHANNEL_CREATE CUSTOM callcenter::info")
        .filter("Unique-ID", "abc");
    cfg.format = EventFormat::Plain;
    let (client, mut events) = Client::connect(cfg).await.unwrap();
    expect_connected(&mut events).await;
    client
        .subscribe(EventSet::parse("CHANNEL_ANSWER"))
        .await
        .unwrap();
    client.filter("Caller-Context", "default").await.unwrap();

    assert!(matches!(
        expect_disconnected(&mut events).await,
        EslError::ConnectionClosed
    ));
    assert_eq!(
        expect_connected(&mut events).await,
        (CORE_A.to_owned(), false)
    );
    // One round trip: every setup command before it has been answered.
    client.api("status").await.unwrap();
    assert_eq!(
        peer.commands(1),
        [
            "auth ClueCon",
            "api global_getvar core_uuid",
            "filter Event-Name BACKGROUND_JOB",
            "filter Event-Name HEARTBEAT",
            "filter Unique-ID abc",
            "filter Caller-Context default",
            "event plain CHANNEL_CREATE CHANNEL_ANSWER BACKGROUND_JOB HEARTBEAT CUSTOM callcenter::info",
            "api status",
        ]
    );
}

#[tokio::test]
async fn api_pending_when_the_socket_drops_fails_and_is_not_resent() {
    let peer = peer_with_first(Opts::default(), |mut c, o| async move {
        while let Some(f) = c.recv().await {
            if f.line.starts_with("api originate") {
                return; // Gone before the reply.
            }
            c.answer(&o, &f).await;
        }
    })
    .await;
    let (client, mut events) = Client::connect(config(&peer)).await.unwrap();
    let err = client
        .api("originate loopback/7001 &park()")
        .await
        .unwrap_err();
    assert!(matches!(err, EslError::ConnectionClosed), "{err:?}");
    expect_connected(&mut events).await;
    expect_disconnected(&mut events).await;
    expect_connected(&mut events).await;
    client.api("status").await.unwrap();
    assert!(
        !peer.commands(1).iter().any(|l| l.contains("originate")),
        "{:?}",
        peer.commands(1)
    );
}

#[tokio::test]
async fn silence_past_the_heartbeat_timeout_reconnects() {
    let peer = Peer::standard(Opts::default()).await;
    let (_client, mut events) = Client::connect(config(&peer)).await.unwrap();
    expect_connected(&mut events).await;
    let started = tokio::time::Instant::now();
    let reason = in_virtual_time(expect_disconnected(&mut events)).await;
    assert!(
        matches!(reason, EslError::Timeout { after, .. } if after == Duration::from_secs(60)),
        "{reason:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(60));
    expect_connected(&mut events).await;
    assert_eq!(peer.accepted(), 2);
}

#[tokio::test]
async fn heartbeats_keep_an_idle_connection_alive() {
    let peer = Peer::standard(Opts {
        heartbeat: Some(Duration::from_secs(20)),
        ..Opts::default()
    })
    .await;
    let (_client, mut events) = Client::connect(config(&peer)).await.unwrap();
    expect_connected(&mut events).await;
    // HEARTBEAT is not in the caller's subscription: nothing at all is delivered.
    let quiet = in_virtual_time(tokio::time::timeout(
        Duration::from_secs(300),
        events.recv(),
    ))
    .await;
    assert!(quiet.is_err(), "{quiet:?}");
    assert_eq!(peer.accepted(), 1);
}

#[tokio::test]
async fn cut_in_the_middle_of_a_frame_delivers_what_came_before_then_reconnects() {
    let peer = peer_with_first(Opts::default(), |mut c, o| async move {
        c.serve_setup(&o).await;
        for _ in 0..2 {
            let ev = c.event("CHANNEL_CREATE", CORE_A, &[("Unique-ID", "u1")]);
            c.send(Message::Event(ev)).await;
        }
        let ev = c.event("CHANNEL_CREATE", CORE_A, &[("Unique-ID", "u1")]);
        let mut buf = bytes::BytesMut::new();
        Message::Event(ev).encode(&mut buf);
        c.send_raw(&buf[..buf.len() / 2]).await;
    })
    .await;
    let cfg = config(&peer).events("CHANNEL_CREATE");
    let (_client, mut events) = Client::connect(cfg).await.unwrap();
    expect_connected(&mut events).await;
    assert_eq!(expect_event_seq(&mut events).await, 1);
    assert_eq!(expect_event_seq(&mut events).await, 2);
    let reason = expect_disconnected(&mut events).await;
    assert!(
        matches!(&reason, EslError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{reason:?}"
    );
    expect_connected(&mut events).await;
}

#[tokio::test]
async fn garbled_content_length_is_a_typed_error_after_earlier_messages_then_reconnects() {
    let peer = peer_with_first(Opts::default(), |mut c, o| async move {
        c.serve_setup(&o).await;
        let ev = c.event("CHANNEL_CREATE", CORE_A, &[]);
        let mut buf = bytes::BytesMut::new();
        Message::Event(ev).encode(&mut buf);
        buf.extend_from_slice(
            b"Content-Length: abc\nContent-Type: text/event-plain\n\nEvent-Name: X\n\n",
        );
        c.send_raw(&buf).await;
        c.serve(&o).await;
    })
    .await;
    let (_client, mut events) = Client::connect(config(&peer).events("CHANNEL_CREATE"))
        .await
        .unwrap();
    expect_connected(&mut events).await;
    assert_eq!(expect_event_seq(&mut events).await, 1);
    let reason = expect_disconnected(&mut events).await;
    assert!(
        matches!(&reason, EslError::BadContentLength { value, .. } if value == "abc"),
        "{reason:?}"
    );
    expect_connected(&mut events).await;
    assert_eq!(peer.accepted(), 2);
}

#[tokio::test]
async fn oversized_header_block_is_a_typed_error_then_reconnects() {
    let peer = peer_with_first(Opts::default(), |mut c, o| async move {
        c.serve_setup(&o).await;
        let ev = c.event("CHANNEL_CREATE", CORE_A, &[]);
        c.send(Message::Event(ev)).await;
        let mut junk = b"X-Junk: ".to_vec();
        junk.resize(16 * 1024, b'a');
        c.send_raw(&junk).await;
        c.serve(&o).await;
    })
    .await;
    let mut cfg = config(&peer).events("CHANNEL_CREATE");
    cfg.limits = DecoderLimits {
        max_header_block: 4096,
        ..DecoderLimits::default()
    };
    let (_client, mut events) = Client::connect(cfg).await.unwrap();
    expect_connected(&mut events).await;
    assert_eq!(expect_event_seq(&mut events).await, 1);
    let reason = expect_disconnected(&mut events).await;
    assert!(
        matches!(reason, EslError::HeaderBlockTooLarge { limit: 4096 }),
        "{reason:?}"
    );
    expect_connected(&mut events).await;
}

#[tokio::test]
async fn a_new_core_uuid_is_reported_as_switch_restarted() {
    let peer = Peer::start(|mut c| async move {
        let o = Opts {
            core_uuid: if c.index == 0 { CORE_A } else { CORE_B },
            ..Opts::default()
        };
        if !c.handshake(&o).await {
            return;
        }
        if c.index == 0 {
            c.serve_setup(&o).await;
        } else {
            c.serve(&o).await;
        }
    })
    .await;
    let (_client, mut events) = Client::connect(config(&peer)).await.unwrap();
    assert_eq!(
        expect_connected(&mut events).await,
        (CORE_A.to_owned(), false)
    );
    expect_disconnected(&mut events).await;
    assert_eq!(
        expect_connected(&mut events).await,
        (CORE_B.to_owned(), true)
    );
}

#[tokio::test]
async fn core_uuid_falls_back_to_the_first_event_when_the_global_is_missing() {
    let peer = Peer::start(|mut c| async move {
        let o = Opts::default();
        if !c.handshake(&o).await {
            return;
        }
        while let Some(f) = c.recv().await {
            if f.line == "api global_getvar core_uuid" {
                c.send(Message::ApiResponse(Bytes::new())).await;
            } else {
                c.answer(&o, &f).await;
            }
            if f.line.starts_with("event ") {
                let ev = c.event("HEARTBEAT", CORE_B, &[]);
                c.send(Message::Event(ev)).await;
            }
        }
    })
    .await;
    let (_client, mut events) = Client::connect(config(&peer)).await.unwrap();
    assert_eq!(
        expect_connected(&mut events).await,
        (CORE_B.to_owned(), false)
    );
}

// ---- the consumer ----------------------------------------------------------------------------

#[tokio::test]
async fn overflow_drops_and_counts_events_then_reports_lagged_while_api_still_works() {
    let peer = peer_with_first(Opts::default(), |mut c, o| async move {
        c.serve_setup(&o).await;
        for _ in 0..1000 {
            let ev = c.event("CHANNEL_CREATE", CORE_A, &[]);
            c.feed(Message::Event(ev)).await;
        }
        c.flush().await;
        while let Some(f) = c.recv().await {
            if f.line == "api trigger" {
                let ev = c.event("CHANNEL_CREATE", CORE_A, &[]);
                c.send(Message::Event(ev)).await;
            }
            c.answer(&o, &f).await;
        }
    })
    .await;
    let mut cfg = config(&peer).events("CHANNEL_CREATE");
    cfg.event_capacity = 16;
    let (client, mut events) = Client::connect(cfg).await.unwrap();
    // Nobody reads the stream; replies still flow, because the socket is always read.
    assert_eq!(client.api("status").await.unwrap(), STATUS_BODY.as_bytes());
    assert_eq!(client.dropped_events(), 1000 - 16);
    assert_eq!(events.dropped_events(), 1000 - 16);

    expect_connected(&mut events).await;
    for seq in 1..=16 {
        assert_eq!(expect_event_seq(&mut events).await, seq);
    }
    client.api("trigger").await.unwrap();
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Lagged { dropped: 984 }
    ));
    assert_eq!(expect_event_seq(&mut events).await, 1001);
}

#[tokio::test]
async fn json_and_plain_subscriptions_yield_the_same_events() {
    let mut seen = Vec::new();
    for format in [EventFormat::Plain, EventFormat::Json, EventFormat::Xml] {
        let peer = Peer::start(|mut c| async move {
            let o = Opts::default();
            if c.handshake(&o).await && c.serve_setup(&o).await {
                let ev = c.event(
                    "CHANNEL_CREATE",
                    CORE_A,
                    &[("Caller-Caller-ID-Name", "Ren\u{e9}e 100% + more")],
                );
                c.send(Message::Event(ev)).await;
                c.serve(&o).await;
            }
        })
        .await;
        let (_client, mut events) = Client::connect(config(&peer).format(format).events("ALL"))
            .await
            .unwrap();
        expect_connected(&mut events).await;
        match next(&mut events).await {
            ClientEvent::Event(e) => seen.push(e.to_json_string()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            peer.commands(0)[2],
            format!("event {} ALL", format.as_str())
        );
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}

#[tokio::test]
async fn shutdown_sends_exit_fails_later_calls_and_ends_the_stream() {
    let peer = Peer::standard(Opts::default()).await;
    let (client, mut events) = Client::connect(config(&peer)).await.unwrap();
    expect_connected(&mut events).await;
    client.shutdown().await.unwrap();
    assert_eq!(peer.commands(0).last().map(String::as_str), Some("exit"));
    assert!(matches!(
        expect_disconnected(&mut events).await,
        EslError::Shutdown
    ));
    assert!(events.recv().await.is_none());
    assert!(events.take_error().is_none());
    assert!(client.is_closed());
    assert!(matches!(
        client.api("status").await.unwrap_err(),
        EslError::Shutdown
    ));
    assert_eq!(peer.accepted(), 1);
}

#[tokio::test]
async fn send_refuses_commands_the_client_manages_and_rejected_subscriptions_are_errors() {
    let peer = Peer::standard(Opts::default()).await;
    let (client, _events) = Client::connect(config(&peer)).await.unwrap();
    for cmd in [
        switchyard_esl::Command::Exit,
        switchyard_esl::Command::Api {
            command: "status".into(),
        },
    ] {
        assert!(matches!(
            client.send(cmd).await.unwrap_err(),
            EslError::InvalidCommand { .. }
        ));
    }
    // Validated before it is recorded: a bad word is never replayed on reconnect.
    assert!(matches!(
        client.filter("Unique ID", "x").await.unwrap_err(),
        EslError::InvalidCommand { .. }
    ));
    let reply = client
        .send(switchyard_esl::Command::Linger(None))
        .await
        .unwrap();
    assert_eq!(reply.text(), "-ERR command not found");
}

// ---- pool ------------------------------------------------------------------------------------

#[tokio::test]
async fn pool_spreads_concurrent_api_calls_and_subscribes_events_on_one_connection() {
    let peer = Peer::start(|mut c| async move {
        let o = Opts::default();
        if !c.handshake(&o).await {
            return;
        }
        while let Some(f) = c.recv().await {
            if f.line == "api slow" {
                // FreeSWITCH runs api inline: this connection answers nothing else meanwhile.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let body = format!("conn {}", c.index);
                c.send(Message::ApiResponse(Bytes::from(body))).await;
            } else {
                c.answer(&o, &f).await;
            }
        }
    })
    .await;
    let (pool, _events) = ClientPool::connect(config(&peer).events("CHANNEL_CREATE"), 3)
        .await
        .unwrap();
    let bodies = join_all((0..9).map(|_| pool.api("slow"))).await;
    let mut per_conn: HashMap<String, usize> = HashMap::new();
    for b in bodies {
        let b = String::from_utf8(b.unwrap().to_vec()).unwrap();
        *per_conn.entry(b).or_default() += 1;
    }
    assert_eq!(per_conn.len(), 3, "{per_conn:?}");
    assert!(per_conn.values().all(|&n| n == 3), "{per_conn:?}");
    assert_eq!(
        peer.commands(0)[2],
        "event plain CHANNEL_CREATE BACKGROUND_JOB HEARTBEAT"
    );
    for conn in 1..3 {
        assert_eq!(
            peer.commands(conn)[2],
            "event plain BACKGROUND_JOB HEARTBEAT"
        );
    }
    let job = pool.bgapi("echo pooled").await.unwrap();
    assert_eq!(job.body_str(), "+OK echo pooled\n");
}
