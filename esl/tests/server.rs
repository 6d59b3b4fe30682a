//! The outbound server against a fake FreeSWITCH: the real 1.10 capture replayed, and
//! hand-written peers for the edge cases (huge channel data, hangups, garbage, bounds,
//! shutdown, slow consumers).

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use switchyard_esl::EslError;
use switchyard_esl::codec::{
    Command, CommandFrame, DecoderLimits, DisconnectNotice, Disposition, EslCodec, Event,
    EventFormat, Headers, Message, Reply, SendMsg, SwitchCodec,
};
use switchyard_esl::server::{
    ExecuteOptions, OutboundServer, OutboundSession, ServerConfig, SessionConfig, SessionEvent,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

const CAPTURE: &str = "../../shared/esl-captures/raw/outbound-socket.o1.fs2client.raw";
const CAPTURE_COMMANDS: &str = "../../shared/esl-captures/raw/outbound-socket.o1.client2fs.raw";
const CAPTURE_UUID: &str = "6db7fc04-2acc-47ed-b482-df357cfa757c";
/// Every await on the network in these tests is bounded by this, so a bug is a failure, not
/// a hung test run.
const LIMIT: Duration = Duration::from_secs(5);

// ---- the fake switch -------------------------------------------------------------------------

struct FakeSwitch<S> {
    io: Framed<S, SwitchCodec>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FakeSwitch<S> {
    fn new(io: S) -> Self {
        FakeSwitch {
            io: Framed::new(io, SwitchCodec::default()),
        }
    }

    async fn command(&mut self) -> CommandFrame {
        timeout(LIMIT, self.io.next())
            .await
            .expect("a command in time")
            .expect("a command before EOF")
            .expect("a well-formed command")
    }

    /// [`command`](Self::command) without the real-time guard, for paused-time tests (where
    /// the guard would fire as soon as the runtime idles).
    async fn command_untimed(&mut self) -> CommandFrame {
        self.io
            .next()
            .await
            .expect("a command before EOF")
            .expect("a well-formed command")
    }

    async fn expect(&mut self, line: &str) -> CommandFrame {
        let cmd = self.command().await;
        assert_eq!(cmd.line, line);
        cmd
    }

    async fn send(&mut self, msg: Message) {
        self.io.send(msg).await.expect("write to the session");
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.expect("write");
    }

    async fn reply(&mut self, text: &str) {
        self.send(Message::CommandReply(Reply::new(text))).await;
    }

    /// Reads `connect` and answers it with the channel data.
    async fn answer_connect(&mut self, channel_data: Message) {
        self.expect("connect").await;
        self.send(channel_data).await;
    }

    /// Reads until the session closes the socket; returns the commands seen on the way.
    async fn until_closed(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(Ok(cmd)) = timeout(LIMIT, self.io.next()).await.expect("EOF in time") {
            seen.push(cmd.line);
        }
        seen
    }
}

/// A connect reply as FreeSWITCH builds it: channel data first, `Content-Type` near the end.
fn channel_data(uuid: &str, variables: usize) -> Message {
    let mut pairs: Vec<(String, String)> = vec![
        ("Event-Name".into(), "CHANNEL_DATA".into()),
        ("Channel-Destination-Number".into(), "7000".into()),
        ("Unique-ID".into(), uuid.into()),
    ];
    for i in 0..variables {
        pairs.push((
            format!("variable_v{i}"),
            format!("value-{i}-abcdefghijklmnopqrstuvwxyz"),
        ));
    }
    pairs.extend([
        ("Content-Type".into(), "command/reply".into()),
        ("Reply-Text".into(), "+OK".into()),
        ("Socket-Mode".into(), "async".into()),
        ("Control".into(), "full".into()),
    ]);
    Message::CommandReply(Reply::from_headers(Headers::from_pairs(pairs)))
}

fn event(name: &str, pairs: &[(&str, &str)]) -> Message {
    let mut all = vec![("Event-Name", name)];
    all.extend_from_slice(pairs);
    Message::Event(Event::from_parts(
        EventFormat::Plain,
        Headers::from_pairs(all),
        None,
    ))
}

fn execute_complete(app: &str, app_uuid: &str, response: &str) -> Message {
    event(
        "CHANNEL_EXECUTE_COMPLETE",
        &[
            ("Application", app),
            ("Application-Response", response),
            ("Application-UUID", app_uuid),
        ],
    )
}

fn linger_notice(uuid: &str) -> Message {
    Message::DisconnectNotice(DisconnectNotice::new(
        &[
            ("Controlled-Session-UUID", uuid),
            ("Content-Disposition", "linger"),
            ("Channel-Name", "loopback/7000-b"),
            ("Linger-Time", "-1"),
        ],
        b"",
    ))
}

/// The `Event-UUID` and app name of a `sendmsg execute`.
fn execute_of(cmd: &CommandFrame) -> Option<(String, String)> {
    match Command::parse(cmd).ok()? {
        Command::SendMsg {
            msg:
                SendMsg::Execute {
                    app,
                    event_uuid: Some(id),
                    ..
                },
            ..
        } => Some((app, id)),
        _ => None,
    }
}

fn fast_config() -> ServerConfig {
    ServerConfig {
        max_connections: 16,
        session: SessionConfig {
            connect_timeout: LIMIT,
            reply_timeout: LIMIT,
            execute_timeout: LIMIT,
            exit_timeout: LIMIT,
            ..SessionConfig::default()
        },
    }
}

async fn server(config: ServerConfig) -> OutboundServer {
    OutboundServer::bind("127.0.0.1:0", config)
        .await
        .expect("bind")
}

/// Connects a fake switch and completes the handshake on both sides.
async fn connected(
    server: &mut OutboundServer,
    uuid: &str,
) -> (OutboundSession, FakeSwitch<TcpStream>) {
    let stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut switch = FakeSwitch::new(stream);
    switch.answer_connect(channel_data(uuid, 3)).await;
    let session = timeout(LIMIT, server.accept())
        .await
        .expect("session in time")
        .expect("server running");
    (session, switch)
}

async fn next(events: &mut OutboundSession) -> SessionEvent {
    timeout(LIMIT, events.next_event())
        .await
        .expect("event in time")
        .expect("queue open")
}

/// Collects events until `Closed` (inclusive).
async fn until_closed(session: &mut OutboundSession) -> Vec<SessionEvent> {
    let mut all = Vec::new();
    loop {
        let ev = next(session).await;
        let closed = matches!(ev, SessionEvent::Closed { .. });
        all.push(ev);
        if closed {
            return all;
        }
    }
}

fn event_names(events: &[SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Event(e) => e.name().map(|n| n.into_owned()),
            _ => None,
        })
        .collect()
}

// ---- the real capture ----------------------------------------------------------------------

fn capture_messages() -> Vec<Message> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CAPTURE);
    let mut buf = BytesMut::from(&std::fs::read(&path).expect("capture present")[..]);
    let mut codec = EslCodec::default();
    let mut out = Vec::new();
    while let Some(m) = codec.decode_message(&mut buf).expect("capture decodes") {
        out.push(m);
    }
    assert!(buf.is_empty(), "capture ends on a message boundary");
    out
}

/// The capture cut into what FreeSWITCH sent in answer to each command: its reply and the
/// messages up to the next reply.
fn capture_segments() -> Vec<Vec<Message>> {
    let mut segments: Vec<Vec<Message>> = Vec::new();
    for m in capture_messages() {
        match (&m, segments.last_mut()) {
            (Message::CommandReply(_), _) | (_, None) => segments.push(vec![m]),
            (_, Some(seg)) => seg.push(m),
        }
    }
    segments
}

/// FreeSWITCH echoes our `Event-UUID` as `Application-UUID`; the capture was made without one,
/// so events of the executed application get ours written in.
fn with_app_uuid(msg: Message, app: &str, id: &str) -> Message {
    let Message::Event(e) = msg else { return msg };
    if e.application().as_deref() != Some(app) || e.application_uuid().is_none() {
        return Message::Event(e);
    }
    let pairs: Vec<(String, String)> = e
        .headers()
        .iter()
        .map(|h| {
            let v = if h.name().eq_ignore_ascii_case("Application-UUID") {
                id.to_owned()
            } else {
                h.value_str().into_owned()
            };
            (h.name().into_owned(), v)
        })
        .collect();
    Message::Event(Event::from_parts(
        e.format(),
        Headers::from_pairs(pairs),
        e.body().cloned(),
    ))
}

/// Plays FreeSWITCH from the capture: answers each command with its segment, then closes
/// after the last (`exit`). Returns the commands received.
async fn replay_capture(stream: TcpStream) -> Vec<CommandFrame> {
    let mut switch = FakeSwitch::new(stream);
    let mut seen = Vec::new();
    for segment in capture_segments() {
        let cmd = switch.command().await;
        let exec = execute_of(&cmd);
        for msg in segment {
            let msg = match &exec {
                Some((app, id)) => with_app_uuid(msg, app, id),
                None => msg,
            };
            switch.send(msg).await;
        }
        seen.push(cmd);
    }
    seen
}

#[tokio::test]
async fn replayed_capture_runs_a_whole_call_from_connect_to_exit() {
    let mut server = server(fast_config()).await;
    let stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let peer = tokio::spawn(replay_capture(stream));
    let mut session = timeout(LIMIT, server.accept()).await.unwrap().unwrap();

    let data = session.channel_data();
    assert_eq!(data.name().as_deref(), Some("CHANNEL_DATA"));
    assert_eq!(
        data.header("Channel-Destination-Number").as_deref(),
        Some("7000")
    );
    assert_eq!(data.header("Socket-Mode").as_deref(), Some("async"));
    assert_eq!(session.uuid(), CAPTURE_UUID);

    session.myevents().await.unwrap();
    session.linger(None).await.unwrap();

    let answered = session.execute("answer", None).await.unwrap();
    assert_eq!(answered.name().as_deref(), Some("CHANNEL_EXECUTE_COMPLETE"));
    assert_eq!(answered.application().as_deref(), Some("answer"));
    assert_eq!(answered.application_response().as_deref(), Some("_none_"));

    let played = session
        .execute("playback", Some("tone_stream://%(250,250,440);loops=4"))
        .await
        .unwrap();
    assert_eq!(played.application().as_deref(), Some("playback"));
    assert_eq!(
        played.application_response().as_deref(),
        Some("FILE PLAYED")
    );
    assert_ne!(played.application_uuid(), answered.application_uuid());

    session.hangup("NORMAL_CLEARING").await.unwrap();
    let mut before_linger = Vec::new();
    let (disposition, linger_time) = loop {
        match next(&mut session).await {
            SessionEvent::Disconnect {
                disposition,
                linger_time,
                ..
            } => break (disposition, linger_time),
            other => before_linger.push(other),
        }
    };
    assert_eq!(disposition, Some(Disposition::Linger));
    assert_eq!(linger_time, None, "Linger-Time -1 means until we leave");
    assert!(session.is_hung_up());
    let names = event_names(&before_linger);
    assert_eq!(names.first().map(String::as_str), Some("CHANNEL_PARK"));
    assert_eq!(
        names.last().map(String::as_str),
        Some("CHANNEL_HANGUP_COMPLETE")
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "CHANNEL_EXECUTE_COMPLETE")
            .count(),
        3,
        "answer, playback and the socket app itself"
    );
    // Nothing runs on a hung-up channel: executing now fails at once.
    assert!(matches!(
        session.execute("playback", Some("x")).await,
        Err(EslError::ConnectionClosed)
    ));

    session.exit().await.unwrap();
    let rest = until_closed(&mut session).await;
    assert!(matches!(
        rest.first(),
        Some(SessionEvent::Disconnect {
            disposition: Some(Disposition::Disconnect),
            ..
        })
    ));
    assert!(matches!(
        rest.last(),
        Some(SessionEvent::Closed { error: None })
    ));
    assert!(session.is_closed());
    assert_eq!(session.dropped_events(), 0);

    // We sent what the capture client sent, plus our Event-UUIDs.
    let seen = timeout(LIMIT, peer).await.unwrap().unwrap();
    let lines: Vec<&str> = seen.iter().map(|c| c.line.as_str()).collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CAPTURE_COMMANDS);
    let expected = std::fs::read_to_string(path).unwrap();
    let expected_lines: Vec<&str> = expected
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| b.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(lines, expected_lines);
    let playback = Command::parse(&seen[4]).unwrap();
    assert!(matches!(
        playback,
        Command::SendMsg { msg: SendMsg::Execute { ref app, ref arg, event_uuid: Some(_), .. }, .. }
            if app == "playback" && arg.as_deref() == Some("tone_stream://%(250,250,440);loops=4")
    ));
    assert_eq!(server.stats().accepted, 1);
}

// ---- channel data --------------------------------------------------------------------------

#[tokio::test]
async fn channel_data_larger_than_64_kib_arrives_whole() {
    let mut server = server(fast_config()).await;
    let big = channel_data("big-1", 2_000);
    let mut wire = BytesMut::new();
    big.encode(&mut wire);
    assert!(
        wire.len() > 64 * 1024,
        "header block is {} bytes",
        wire.len()
    );

    let stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut switch = FakeSwitch::new(stream);
    switch.answer_connect(big).await;
    let session = timeout(LIMIT, server.accept()).await.unwrap().unwrap();

    assert_eq!(session.uuid(), "big-1");
    assert_eq!(
        session.channel_data().variable("v1999").as_deref(),
        Some("value-1999-abcdefghijklmnopqrstuvwxyz")
    );
    assert_eq!(
        session.channel_data().header("Control").as_deref(),
        Some("full")
    );
}

#[tokio::test]
async fn a_switch_that_never_answers_connect_fails_the_handshake_and_frees_its_slot() {
    let mut config = fast_config();
    config.session.connect_timeout = Duration::from_millis(100);
    let server = server(config).await;
    let stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut switch = FakeSwitch::new(stream);
    switch.expect("connect").await;
    // Say nothing: the server gives up and closes.
    assert!(switch.until_closed().await.is_empty());
    let stats = server.stats();
    assert_eq!(stats.handshake_failed, 1);
    assert_eq!(stats.active, 0);
}

// ---- execute -------------------------------------------------------------------------------

#[tokio::test]
async fn execute_resolves_on_its_application_uuid_not_on_the_application_name() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "exec-1").await;
    let run = tokio::spawn(async move {
        let done = session.execute("playback", Some("a.wav")).await;
        (session, done)
    });
    let cmd = switch.command().await;
    let (app, id) = execute_of(&cmd).expect("sendmsg execute with an Event-UUID");
    assert_eq!(app, "playback");
    switch.reply("+OK").await;
    // A completion of the same application under another uuid (FreeSWITCH's stale one).
    switch
        .send(execute_complete("playback", "someone-else", "STALE"))
        .await;
    switch
        .send(execute_complete("playback", &id, "FILE PLAYED"))
        .await;
    let (_session, done) = timeout(LIMIT, run).await.unwrap().unwrap();
    let done = done.unwrap();
    assert_eq!(done.application_uuid().as_deref(), Some(id.as_str()));
    assert_eq!(done.application_response().as_deref(), Some("FILE PLAYED"));
}

#[tokio::test]
async fn execute_with_options_sends_event_lock_async_and_loops() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "opts-1").await;
    let options = ExecuteOptions {
        event_lock: true,
        async_: true,
        loops: Some(3),
    };
    let run = tokio::spawn(async move {
        let done = session
            .execute_with("playback", Some("hold.wav"), options)
            .await;
        (session, done)
    });
    let cmd = switch.command().await;
    let Ok(Command::SendMsg {
        msg:
            SendMsg::Execute {
                app,
                event_lock,
                async_,
                loops,
                event_uuid: Some(id),
                ..
            },
        ..
    }) = Command::parse(&cmd)
    else {
        panic!("not a sendmsg execute: {cmd:?}");
    };
    assert_eq!(
        (app.as_str(), event_lock, async_, loops),
        ("playback", true, true, Some(3))
    );
    switch.reply("+OK").await;
    switch
        .send(execute_complete("playback", &id, "FILE PLAYED"))
        .await;
    let (_session, done) = timeout(LIMIT, run).await.unwrap().unwrap();
    assert_eq!(
        done.unwrap().application_uuid().as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn execute_fails_when_the_channel_hangs_up_before_completing() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "hang-1").await;
    let handle = session.handle().clone();
    let run = tokio::spawn(async move { handle.execute("park", None).await });
    switch.command().await;
    switch.reply("+OK").await;
    switch.send(event("CHANNEL_HANGUP", &[])).await;
    switch.send(linger_notice("hang-1")).await;
    let result = timeout(LIMIT, run).await.expect("no hang").unwrap();
    assert!(
        matches!(result, Err(EslError::ConnectionClosed)),
        "{result:?}"
    );
    assert!(!session.is_closed(), "lingering: the socket stays open");
}

#[tokio::test]
async fn execute_fails_when_the_socket_closes_before_completing() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "hang-2").await;
    let run = tokio::spawn(async move { session.execute("park", None).await });
    switch.command().await;
    switch.reply("+OK").await;
    drop(switch);
    let result = timeout(LIMIT, run).await.expect("no hang").unwrap();
    assert!(
        matches!(result, Err(EslError::ConnectionClosed)),
        "{result:?}"
    );
}

#[tokio::test]
async fn execute_refused_by_the_switch_is_a_rejected_error() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "rej-1").await;
    let run = tokio::spawn(async move { session.execute("nosuchapp", None).await });
    switch.command().await;
    switch.reply("-ERR invalid application").await;
    let result = timeout(LIMIT, run).await.unwrap().unwrap();
    assert!(
        matches!(&result, Err(EslError::Rejected { reply, .. }) if reply == "-ERR invalid application"),
        "{result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn execute_without_completion_times_out_and_frees_its_slot() {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let peer = tokio::spawn(async move {
        let mut switch = FakeSwitch::new(theirs);
        switch.answer_connect(channel_data("to-1", 0)).await;
        for _ in 0..2 {
            switch.command_untimed().await;
            switch.reply("+OK").await;
        }
        switch
    });
    let config = SessionConfig {
        execute_timeout: Duration::from_secs(30),
        max_pending_executes: 1,
        ..SessionConfig::default()
    };
    let session = OutboundSession::from_stream(ours, config).await.unwrap();
    let started = tokio::time::Instant::now();
    let result = session.execute("park", None).await;
    assert!(
        matches!(
            result,
            Err(EslError::Timeout {
                what: "CHANNEL_EXECUTE_COMPLETE",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    // The single execute slot was given back.
    assert!(matches!(
        session.execute("park", None).await,
        Err(EslError::Timeout { .. })
    ));
    peer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_command_without_reply_times_out_and_later_replies_stay_in_order() {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let mut switch = FakeSwitch::new(theirs);
        switch.answer_connect(channel_data("to-2", 0)).await;
        switch.expect("myevents").await;
        // Answer only after the caller gave up; the late reply must not go to the next one.
        go_rx.await.unwrap();
        switch.reply("+OK Events Enabled").await;
        switch.expect("linger").await;
        switch.reply("+OK will linger").await;
        switch
    });
    let config = SessionConfig {
        reply_timeout: Duration::from_secs(10),
        ..SessionConfig::default()
    };
    let session = OutboundSession::from_stream(ours, config).await.unwrap();
    let result = session.myevents().await;
    assert!(
        matches!(
            result,
            Err(EslError::Timeout {
                what: "command reply",
                ..
            })
        ),
        "{result:?}"
    );
    go_tx.send(()).unwrap();
    let reply = session.send(Command::Linger(None)).await.unwrap();
    assert_eq!(reply.text(), "+OK will linger");
    peer.await.unwrap();
}

#[tokio::test]
async fn concurrent_commands_each_get_their_own_reply() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "fifo-1").await;
    let peer = tokio::spawn(async move {
        for _ in 0..20 {
            let cmd = switch.command().await;
            switch.reply(&format!("+OK {}", cmd.line)).await;
        }
        switch
    });
    let handle = session.handle().clone();
    let calls = (0..20).map(|i| {
        let h = handle.clone();
        async move {
            let header = format!("h{i}");
            let reply = h
                .send(Command::Filter {
                    header: header.clone(),
                    value: "v".into(),
                })
                .await
                .unwrap();
            assert_eq!(reply.text(), format!("+OK filter {header} v"));
        }
    });
    timeout(LIMIT, futures_util::future::join_all(calls))
        .await
        .unwrap();
    peer.await.unwrap();
}

// ---- bad input -----------------------------------------------------------------------------

#[tokio::test]
async fn a_garbled_frame_is_a_typed_error_after_the_events_before_it() {
    let mut server = server(fast_config()).await;
    let (mut session, mut switch) = connected(&mut server, "bad-1").await;
    let handle = session.handle().clone();
    let pending = tokio::spawn(async move { handle.myevents().await });
    switch.expect("myevents").await;
    switch.send(event("CHANNEL_PARK", &[])).await;
    switch.send(event("CHANNEL_ANSWER", &[])).await;
    switch.send_raw(b"this line has no colon\n\n").await;

    let all = until_closed(&mut session).await;
    assert_eq!(event_names(&all), ["CHANNEL_PARK", "CHANNEL_ANSWER"]);
    assert!(
        matches!(
            all.last(),
            Some(SessionEvent::Closed {
                error: Some(EslError::MalformedHeader { .. })
            })
        ),
        "{:?}",
        all.last()
    );
    assert!(matches!(
        timeout(LIMIT, pending).await.unwrap().unwrap(),
        Err(EslError::ConnectionClosed)
    ));
    // The session dropped the connection.
    assert!(switch.until_closed().await.is_empty());
}

#[tokio::test]
async fn an_oversized_frame_is_a_typed_error_after_the_events_before_it() {
    let mut config = fast_config();
    config.session.limits = DecoderLimits {
        max_header_block: 4096,
        ..DecoderLimits::default()
    };
    let mut server = server(config).await;
    let (mut session, mut switch) = connected(&mut server, "big-2").await;
    switch.send(event("CHANNEL_PARK", &[])).await;
    let mut huge = b"Content-Type: text/event-plain\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 8192));
    switch.send_raw(&huge).await;
    let all = until_closed(&mut session).await;
    assert_eq!(event_names(&all), ["CHANNEL_PARK"]);
    assert!(
        matches!(
            all.last(),
            Some(SessionEvent::Closed {
                error: Some(EslError::HeaderBlockTooLarge { limit: 4096 })
            })
        ),
        "{:?}",
        all.last()
    );
}

// ---- bounds --------------------------------------------------------------------------------

#[tokio::test]
async fn connections_over_max_connections_are_closed_and_counted() {
    let mut config = fast_config();
    config.max_connections = 1;
    let mut server = server(config).await;
    let (session, _switch) = connected(&mut server, "max-1").await;

    let mut extra = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut buf = [0u8; 16];
    // Closed without a word (no `connect`): EOF or a reset.
    let read = timeout(LIMIT, extra.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.rejected, stats.active), (1, 1, 1));

    // The slot comes back when the session ends.
    drop(session);
    timeout(LIMIT, async {
        while server.stats().active > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let (_again, _switch2) = connected(&mut server, "max-2").await;
    assert_eq!(server.stats().accepted, 2);
}

#[tokio::test]
async fn a_consumer_that_reads_no_events_still_gets_replies_and_drops_are_counted() {
    let mut config = fast_config();
    config.session.event_queue = 4;
    let mut server = server(config).await;
    let (mut session, mut switch) = connected(&mut server, "slow-1").await;
    let peer = tokio::spawn(async move {
        switch.expect("myevents").await;
        for i in 0..10 {
            switch
                .send(event("CUSTOM", &[("Seq", &i.to_string())]))
                .await;
        }
        switch.reply("+OK Events Enabled").await;
        switch.expect("linger").await;
        switch.send(event("CUSTOM", &[("Seq", "10")])).await;
        switch.reply("+OK will linger").await;
        switch
    });
    // Nobody reads events while these run.
    session.myevents().await.unwrap();
    assert_eq!(session.dropped_events(), 6);

    let mut seqs = Vec::new();
    for _ in 0..4 {
        match next(&mut session).await {
            SessionEvent::Event(e) => seqs.push(e.header("Seq").unwrap().into_owned()),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    assert_eq!(seqs, ["0", "1", "2", "3"]);
    session.linger(None).await.unwrap();
    assert!(matches!(
        next(&mut session).await,
        SessionEvent::Lagged { dropped: 6 }
    ));
    match next(&mut session).await {
        SessionEvent::Event(e) => assert_eq!(e.header("Seq").as_deref(), Some("10")),
        other => panic!("expected an event, got {other:?}"),
    }
    peer.await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_closes_the_socket() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "drop-1").await;
    let (handle, events) = session.into_parts();
    drop(events);
    let clone = handle.clone();
    drop(handle);
    // A clone keeps the connection usable.
    let call = tokio::spawn(async move { clone.myevents().await.map(|()| clone) });
    switch.expect("myevents").await;
    switch.reply("+OK Events Enabled").await;
    let clone = timeout(LIMIT, call).await.unwrap().unwrap().unwrap();
    // The last one gone, the switch sees EOF.
    drop(clone);
    assert!(switch.until_closed().await.is_empty());
    timeout(LIMIT, async {
        while server.stats().active > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
}

// ---- shutdown ------------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_lets_cooperating_sessions_exit_and_fails_their_pending_executes() {
    let mut server = server(fast_config()).await;
    let (session, mut switch) = connected(&mut server, "sd-1").await;
    let (handle, mut events) = session.into_parts();
    let exec_handle = handle.clone();
    let exec = tokio::spawn(async move { exec_handle.execute("playback", Some("long.wav")).await });
    switch.command().await;
    switch.reply("+OK").await;
    // The call handler: on Shutdown, leave.
    let call = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let SessionEvent::Shutdown = ev {
                return handle.exit().await;
            }
        }
        panic!("no Shutdown event");
    });
    let peer = tokio::spawn(async move {
        switch.expect("exit").await;
        switch.reply("+OK bye").await;
        // FreeSWITCH closes after `+OK bye` and its notice.
    });

    let report = timeout(LIMIT, server.shutdown(Duration::from_secs(3)))
        .await
        .unwrap();
    assert!(report.drained, "{report:?}");
    assert_eq!(report.forced, 0);
    assert!(matches!(exec.await.unwrap(), Err(EslError::Shutdown)));
    call.await.unwrap().unwrap();
    peer.await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_sessions_that_outlive_the_grace_period() {
    let mut config = fast_config();
    config.max_connections = 4;
    let mut server = server(config).await;
    let (mut stubborn, mut switch) = connected(&mut server, "sd-2").await;
    // A connection that never got past the handshake and one never accepted by the app.
    let mut half_open = TcpStream::connect(server.local_addr()).await.unwrap();
    let unaccepted = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut unaccepted = FakeSwitch::new(unaccepted);
    unaccepted.answer_connect(channel_data("sd-3", 0)).await;
    timeout(LIMIT, async {
        while server.stats().active < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();

    let addr = server.local_addr();
    let report = timeout(LIMIT, server.shutdown(Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(!report.drained);
    assert_eq!(report.forced, 1, "only the stubborn session was left");

    let all = until_closed(&mut stubborn).await;
    assert!(matches!(all.first(), Some(SessionEvent::Shutdown)));
    assert!(matches!(
        all.last(),
        Some(SessionEvent::Closed { error: None })
    ));
    assert!(matches!(stubborn.myevents().await, Err(EslError::Shutdown)));
    assert!(switch.until_closed().await.is_empty());
    assert!(unaccepted.until_closed().await.is_empty());
    let mut buf = Vec::new();
    // `connect`, then EOF.
    let _ = timeout(LIMIT, half_open.read_to_end(&mut buf))
        .await
        .unwrap();
    assert_eq!(buf, b"connect\n\n");
    // The listener is gone.
    assert!(TcpStream::connect(addr).await.is_err());
}
