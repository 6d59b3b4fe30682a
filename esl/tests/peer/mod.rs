//! A FreeSWITCH stand-in on loopback for the client tests: it decodes commands with the
//! switch-side codec and answers with bytes shaped like the captures in
//! `../shared/esl-captures` (reply texts, header order, the goodbye notice).

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use switchyard_esl::codec::{
    Command, CommandFrame, DisconnectNotice, Event, EventFormat, Headers, Message, Reply,
    SwitchCodec,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

pub const CORE_A: &str = "6b3bea01-13d9-44e6-9ba3-d808481ca295";
pub const CORE_B: &str = "0f4c2a9e-5d1b-4c43-9f7e-2a5b8c6d1e00";

/// `api status` as FreeSWITCH 1.10.12 answered it in the capture.
pub const STATUS_BODY: &str = "UP 0 years, 0 days, 0 hours, 0 minutes, 5 seconds, 84 milliseconds, 427 microseconds\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n0 session(s) since startup\n0 session(s) - peak 0, last 5min 0 \n0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/99.70\nCurrent Stack Size/Max 240K/8192K\n";

/// The body of every inbound `text/disconnect-notice`.
pub const GOODBYE: &[u8] = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// How a standard connection behaves.
#[derive(Clone, Debug)]
pub struct Opts {
    pub password: &'static str,
    pub core_uuid: &'static str,
    /// Send each BACKGROUND_JOB right after the `+OK Job-UUID` reply.
    pub bgapi_results: bool,
    /// Send a HEARTBEAT this often once subscribed.
    pub heartbeat: Option<Duration>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            password: "ClueCon",
            core_uuid: CORE_A,
            bgapi_results: true,
            heartbeat: None,
        }
    }
}

/// The command lines one connection received.
type CommandLog = Arc<Mutex<Vec<String>>>;

pub struct Peer {
    pub addr: String,
    accepted: Arc<AtomicUsize>,
    logs: Arc<Mutex<Vec<CommandLog>>>,
}

impl Peer {
    /// Accepts connections forever, running `handler` on each.
    pub async fn start<F, Fut>(handler: F) -> Peer
    where
        F: Fn(PeerConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let logs: Arc<Mutex<Vec<CommandLog>>> = Arc::default();
        let (acc, lg) = (Arc::clone(&accepted), Arc::clone(&logs));
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let index = acc.fetch_add(1, Ordering::SeqCst);
                let log = Arc::new(Mutex::new(Vec::new()));
                lg.lock().unwrap().push(Arc::clone(&log));
                let conn = PeerConn {
                    index,
                    framed: Framed::new(sock, SwitchCodec::default()),
                    log,
                    format: EventFormat::Plain,
                    seq: 0,
                };
                tokio::spawn(handler(conn));
            }
        });
        Peer {
            addr,
            accepted,
            logs,
        }
    }

    /// Every connection authenticates with `opts` and is served until the client leaves.
    pub async fn standard(opts: Opts) -> Peer {
        Peer::start(move |mut c| {
            let o = opts.clone();
            async move {
                if c.handshake(&o).await {
                    c.serve(&o).await;
                }
            }
        })
        .await
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The command lines connection `conn` received, in order.
    pub fn commands(&self, conn: usize) -> Vec<String> {
        let logs = self.logs.lock().unwrap();
        logs.get(conn)
            .map(|l| l.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

pub struct PeerConn {
    pub index: usize,
    pub framed: Framed<TcpStream, SwitchCodec>,
    log: CommandLog,
    /// The format of the last `event` command.
    pub format: EventFormat,
    seq: u64,
}

impl PeerConn {
    pub async fn send(&mut self, m: Message) {
        let _ = self.framed.send(m).await;
    }

    /// Buffers without flushing (for floods); `flush` sends.
    pub async fn feed(&mut self, m: Message) {
        let _ = self.framed.feed(m).await;
    }

    pub async fn flush(&mut self) {
        let _ = SinkExt::<Message>::flush(&mut self.framed).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.flush().await;
        let _ = self.framed.get_mut().write_all(bytes).await;
    }

    /// The next command, logged; `None` when the client closed.
    pub async fn recv(&mut self) -> Option<CommandFrame> {
        let frame = self.framed.next().await?.ok()?;
        self.log.lock().unwrap().push(frame.line.clone());
        Some(frame)
    }

    /// `auth/request`, then checks the password. On a wrong one: `-ERR invalid`, the goodbye
    /// notice and close, as FreeSWITCH does.
    pub async fn handshake(&mut self, o: &Opts) -> bool {
        self.send(Message::AuthRequest).await;
        let Some(frame) = self.recv().await else {
            return false;
        };
        let ok = match Command::parse(&frame) {
            Ok(Command::Auth { password }) => password == o.password,
            Ok(Command::UserAuth { password, .. }) => password == o.password,
            _ => false,
        };
        if ok {
            self.send(Message::CommandReply(Reply::new("+OK accepted")))
                .await;
        } else {
            self.send(Message::CommandReply(Reply::new("-ERR invalid")))
                .await;
            self.goodbye().await;
        }
        ok
    }

    pub async fn goodbye(&mut self) {
        self.send(Message::DisconnectNotice(DisconnectNotice::new(
            &[],
            GOODBYE,
        )))
        .await;
    }

    /// Answers commands until the client leaves or sends `exit`.
    pub async fn serve(&mut self, o: &Opts) {
        let mut beat = o.heartbeat.map(|every| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            tokio::select! {
                frame = self.recv() => match frame {
                    Some(f) => {
                        if !self.answer(o, &f).await {
                            return;
                        }
                    }
                    None => return,
                },
                _ = async { beat.as_mut().expect("guarded").tick().await }, if beat.is_some() => {
                    let ev = self.event("HEARTBEAT", o.core_uuid, &[("Event-Info", "System Ready")]);
                    self.send(Message::Event(ev)).await;
                }
            }
        }
    }

    /// Serves until a command line equal to `line` has been answered.
    pub async fn serve_until(&mut self, o: &Opts, line: &str) -> bool {
        while let Some(f) = self.recv().await {
            if !self.answer(o, &f).await {
                return false;
            }
            if f.line == line {
                return true;
            }
        }
        false
    }

    /// Serves through the client's setup: everything up to the `event` command.
    pub async fn serve_setup(&mut self, o: &Opts) -> bool {
        while let Some(f) = self.recv().await {
            if !self.answer(o, &f).await {
                return false;
            }
            if f.line.starts_with("event ") {
                return true;
            }
        }
        false
    }

    /// Answers one command the way FreeSWITCH does; `false` once the socket should close.
    pub async fn answer(&mut self, o: &Opts, f: &CommandFrame) -> bool {
        let reply = |t: &str| Message::CommandReply(Reply::new(t));
        match Command::parse(f) {
            Ok(Command::Api { command }) => {
                let body = match command.as_str() {
                    "status" => STATUS_BODY.to_owned(),
                    "global_getvar core_uuid" => o.core_uuid.to_owned(),
                    other => format!("+OK {other}\n"),
                };
                self.send(Message::ApiResponse(Bytes::from(body))).await;
            }
            Ok(Command::BgApi { command, job_uuid }) => {
                let job = job_uuid.unwrap_or_else(|| "11111111-2222-3333-4444-555555555555".into());
                self.send(Message::CommandReply(Reply::with_headers(
                    &format!("+OK Job-UUID: {job}"),
                    &[("Job-UUID", job.as_str())],
                )))
                .await;
                if o.bgapi_results {
                    let ev = self.job_event(o.core_uuid, &job, &command);
                    self.send(Message::Event(ev)).await;
                }
            }
            Ok(Command::Event { format, .. }) => {
                self.format = format;
                let text = format!("+OK event listener enabled {}", format.as_str());
                self.send(reply(&text)).await;
            }
            Ok(Command::NixEvent { .. }) => self.send(reply("+OK events disabled")).await,
            Ok(Command::NoEvents) => self.send(reply("+OK no longer listening for events")).await,
            Ok(Command::Filter { header, value }) => {
                let text = format!("+OK filter added. [{header}]=[{value}]");
                self.send(reply(&text)).await;
            }
            Ok(Command::FilterDelete { header, value }) => {
                let text = format!(
                    "+OK filter deleted. [{header}]=[{}]",
                    value.unwrap_or_default()
                );
                self.send(reply(&text)).await;
            }
            Ok(Command::Exit) => {
                self.send(reply("+OK bye")).await;
                self.goodbye().await;
                return false;
            }
            _ => self.send(reply("-ERR command not found")).await,
        }
        true
    }

    /// An event with the common headers FreeSWITCH puts first, in this connection's format.
    pub fn event(&mut self, name: &str, core_uuid: &str, extra: &[(&str, &str)]) -> Event {
        self.seq += 1;
        build_event(self.format, name, core_uuid, self.seq, extra, None)
    }

    /// A BACKGROUND_JOB whose body is `+OK <command>\n`.
    pub fn job_event(&mut self, core_uuid: &str, job_uuid: &str, command: &str) -> Event {
        self.seq += 1;
        let (cmd, arg) = command.split_once(' ').unwrap_or((command, ""));
        build_event(
            self.format,
            "BACKGROUND_JOB",
            core_uuid,
            self.seq,
            &[
                ("Job-UUID", job_uuid),
                ("Job-Command", cmd),
                ("Job-Command-Arg", arg),
            ],
            Some(format!("+OK {command}\n").as_bytes()),
        )
    }
}

pub fn build_event(
    format: EventFormat,
    name: &str,
    core_uuid: &str,
    seq: u64,
    extra: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Event {
    let seq = seq.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("Event-Name", name),
        ("Core-UUID", core_uuid),
        ("FreeSWITCH-Hostname", "vm"),
        ("FreeSWITCH-Switchname", "vm"),
        ("FreeSWITCH-IPv4", "192.0.2.2"),
        ("FreeSWITCH-IPv6", "fd00::2"),
        ("Event-Date-Local", "2026-11-21 15:42:36"),
        ("Event-Date-GMT", "Sat, 21 Nov 2026 15:42:36 GMT"),
        ("Event-Date-Timestamp", "1795275756939977"),
        ("Event-Calling-File", "mod_event_socket.c"),
        ("Event-Calling-Function", "api_exec"),
        ("Event-Calling-Line-Number", "1572"),
        ("Event-Sequence", seq.as_str()),
    ];
    pairs.extend_from_slice(extra);
    Event::from_parts(
        format,
        Headers::from_pairs(pairs),
        body.map(Bytes::copy_from_slice),
    )
}
