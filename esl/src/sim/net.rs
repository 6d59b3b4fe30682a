//! The tokio shell around [`Switch`]: one task owns the switch and `select!`s over connection
//! inputs and its next timer; each socket has a reader task (commands in) and a writer task
//! (messages out, through a bounded channel).
//!
//! ```text
//!  accept ─┐                                  ┌─▶ writer(conn) ─▶ socket
//!  reader ─┼─▶ mpsc(Input, 1024) ─▶ switch ───┼─▶ writer(conn) ─▶ socket
//!  outbound connect ┘        ▲  sleep_until   └─▶ connect task (inbound calls)
//!                            └─ writers report Flushed(n) so the switch knows each backlog
//! ```
//! mod_oreka forks (`Output::Oreka`): one `oreka` task per forked channel.
//! Recorder legs (`Output::Recorder`): one `uac` task per leg, dialling over UDP;
//! their reports come back on a channel of `REPORT_CAPACITY` (256) and become
//! `recorder_answered` / `recorder_failed` / `recorder_bye`.
//!
//! Bounds: the input channel holds 1024 inputs (readers wait: TCP backpressure); a writer's
//! channel holds the switch's event bound plus slack, and the switch itself kills a listener
//! whose backlog passes the bound, so `try_send` never finds it full in practice (if it does,
//! the message is dropped with a warning).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::config::{DtmfScript, ScenarioFile, SimConfig};
use super::core::{ConnId, ConnKind, Fault, InboundCall, Output, RecorderAction, Switch};
use super::uac;
use crate::codec::{CommandFrame, Message, SwitchCodec};
use crate::error::EslError;

const INPUT_CAPACITY: usize = 1024;
/// Reports of recorder legs waiting for the switch (their tasks wait when it is full).
const REPORT_CAPACITY: usize = 256;
/// Messages a writer batches into one socket write.
const WRITE_BATCH: usize = 256;

/// Options of the standalone fake switch (`switchyard fakeswitch`).
#[derive(Clone, Debug)]
pub struct StandaloneConfig {
    pub listen: String,
    pub password: String,
    /// A TOML scenario (see [`ScenarioFile`]); the default model applies without one.
    pub scenario: Option<PathBuf>,
    /// Where inbound callers are sent (the dialplan's `socket` target).
    pub inbound_target: Option<String>,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
}

impl Default for StandaloneConfig {
    fn default() -> Self {
        StandaloneConfig {
            listen: "127.0.0.1:8021".into(),
            password: "ClueCon".into(),
            scenario: None,
            inbound_target: None,
            seed: None,
        }
    }
}

impl StandaloneConfig {
    /// The switch configuration this describes (reads the scenario file).
    pub fn sim_config(&self) -> Result<(SimConfig, u64), EslError> {
        let ScenarioFile {
            scenario,
            switch,
            modules,
        } = match &self.scenario {
            Some(p) => ScenarioFile::from_toml(&std::fs::read_to_string(p)?)?,
            None => ScenarioFile::default(),
        };
        let seed = self.seed.unwrap_or(scenario.seed);
        // The seed replays the behaviour; the clock and the uuids are this run's own.
        let sim = SimConfig {
            password: self.password.clone(),
            inbound_target: self.inbound_target.clone(),
            scenario,
            switch,
            modules: modules.unwrap_or_else(|| {
                super::config::DEFAULT_MODULES
                    .iter()
                    .map(|m| (*m).to_owned())
                    .collect()
            }),
            ..SimConfig::default()
        }
        .for_this_run();
        Ok((sim, seed))
    }
}

/// Runs the fake switch until ctrl-c.
pub async fn run_standalone(cfg: StandaloneConfig) -> Result<(), EslError> {
    run_standalone_until(cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Runs the fake switch until `shutdown` completes.
pub async fn run_standalone_until(
    cfg: StandaloneConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), EslError> {
    let (sim, seed) = cfg.sim_config()?;
    let listener = TcpListener::bind(&cfg.listen).await?;
    tracing::info!(listen = %cfg.listen, seed, "fake FreeSWITCH listening");
    let handle = spawn(listener, sim, seed);
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}

enum Input {
    Accepted(TcpStream),
    Command(ConnId, CommandFrame),
    Closed(ConnId),
    Flushed(ConnId, usize),
    Outbound(ConnId, std::io::Result<TcpStream>),
    Control(Control),
}

enum Control {
    Inject(Fault),
    PlaceCall(InboundCall, oneshot::Sender<Option<String>>),
    PlaceScriptedCall(InboundCall, DtmfScript, oneshot::Sender<Option<String>>),
    CoreUuid(oneshot::Sender<String>),
    ChannelCount(oneshot::Sender<usize>),
    ToneHz(String, oneshot::Sender<Option<u32>>),
    Shutdown(oneshot::Sender<()>),
}

/// A running fake switch.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    tx: mpsc::Sender<Input>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

impl SimHandle {
    /// The event-socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn inject(&self, fault: Fault) {
        let _ = self.tx.send(Input::Control(Control::Inject(fault))).await;
    }

    /// Places an inbound call (needs an inbound target); returns its uuid.
    pub async fn place_inbound_call(&self, call: InboundCall) -> Option<String> {
        self.ask(|tx| Control::PlaceCall(call, tx)).await
    }

    /// As [`SimHandle::place_inbound_call`], the caller pressing keys by `script` (from its
    /// answer), as [`Switch::place_scripted_call`] does.
    pub async fn place_scripted_call(
        &self,
        call: InboundCall,
        script: DtmfScript,
    ) -> Option<String> {
        self.ask(|tx| Control::PlaceScriptedCall(call, script, tx))
            .await
    }

    pub async fn core_uuid(&self) -> String {
        self.ask(Control::CoreUuid).await
    }

    pub async fn channel_count(&self) -> usize {
        self.ask(Control::ChannelCount).await
    }

    /// A channel's tone in Hz (its `sim_tone_hz`; `None` for no such channel or a recorder
    /// leg): what its audio is in recordings and recorder-leg RTP.
    pub async fn tone_hz(&self, uuid: &str) -> Option<u32> {
        let uuid = uuid.to_owned();
        self.ask(|tx| Control::ToneHz(uuid, tx)).await
    }

    /// Sends a control request and waits for its answer; a switch that has stopped answers
    /// the default (no call, no uuid, no channels).
    async fn ask<T: Default>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Control) -> T {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Input::Control(request(tx))).await.is_err() {
            return T::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Stops the switch: every connection closes.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Input::Control(Control::Shutdown(tx)))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

/// Starts a fake switch on `listener`.
pub fn spawn(listener: TcpListener, config: SimConfig, seed: u64) -> SimHandle {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
    let accept_tx = tx.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if accept_tx.send(Input::Accepted(stream)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fake switch: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    let task = tokio::spawn(run(config, seed, tx.clone(), rx, acceptor));
    SimHandle { addr, tx, task }
}

enum WriterMsg {
    Msg(Message),
    Raw(Bytes),
    Close,
}

struct ConnIo {
    tx: mpsc::Sender<WriterMsg>,
    kill: Option<oneshot::Sender<Message>>,
    reader: JoinHandle<()>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn run(
    config: SimConfig,
    seed: u64,
    tx: mpsc::Sender<Input>,
    mut rx: mpsc::Receiver<Input>,
    acceptor: JoinHandle<()>,
) {
    let writer_capacity = config.max_event_queue + config.max_missed + 1024;
    let mut sw = Switch::new(config, seed, now());
    let mut conns: HashMap<ConnId, ConnIo> = HashMap::new();
    let mut shutdown: Option<oneshot::Sender<()>> = None;
    let (report_tx, mut reports) = mpsc::channel(REPORT_CAPACITY);
    let mut legs = Legs {
        running: HashMap::new(),
        report: report_tx,
        forks: HashMap::new(),
    };
    loop {
        let deadline = sw.poll_timeout().map(tokio::time::Instant::from_std);
        let input = tokio::select! {
            i = rx.recv() => i,
            Some(r) = reports.recv() => {
                let t = now();
                match r {
                    uac::Report::Answered(leg) => sw.recorder_answered(t, &leg),
                    uac::Report::Failed(leg, cause) => {
                        legs.running.remove(&leg);
                        sw.recorder_failed(t, &leg, cause);
                    }
                    uac::Report::Bye(leg) => {
                        legs.running.remove(&leg);
                        sw.recorder_bye(t, &leg);
                    }
                }
                drain(&mut sw, &mut conns, &tx, &mut legs);
                continue;
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                sw.handle_timeout(now());
                drain(&mut sw, &mut conns, &tx, &mut legs);
                continue;
            }
        };
        let Some(input) = input else { break };
        let t = now();
        match input {
            Input::Accepted(stream) => {
                let id = sw.connection_opened(t, ConnKind::Inbound);
                conns.insert(id, start_io(id, stream, &tx, writer_capacity));
            }
            Input::Command(id, frame) => sw.handle_command(t, id, frame),
            Input::Closed(id) => {
                if let Some(io) = conns.remove(&id) {
                    let _ = io.tx.try_send(WriterMsg::Close);
                }
                sw.connection_closed(t, id);
            }
            Input::Flushed(id, n) => sw.handle_flushed(id, n),
            Input::Outbound(id, Ok(stream)) => {
                conns.insert(id, start_io(id, stream, &tx, writer_capacity));
                sw.outbound_connected(t, id);
            }
            Input::Outbound(id, Err(e)) => {
                tracing::warn!(conn = id.0, error = %e, "fake switch: socket target unreachable");
                sw.outbound_failed(t, id);
            }
            Input::Control(c) => match c {
                Control::Inject(f) => sw.inject(t, f),
                Control::PlaceCall(call, reply) => {
                    let _ = reply.send(sw.place_inbound_call(t, call));
                }
                Control::PlaceScriptedCall(call, script, reply) => {
                    let _ = reply.send(sw.place_scripted_call(t, call, script));
                }
                Control::CoreUuid(reply) => {
                    let _ = reply.send(sw.core_uuid().to_owned());
                }
                Control::ChannelCount(reply) => {
                    let _ = reply.send(sw.channel_count());
                }
                Control::ToneHz(uuid, reply) => {
                    let _ = reply.send(sw.tone_hz(&uuid));
                }
                Control::Shutdown(reply) => {
                    shutdown = Some(reply);
                }
            },
        }
        drain(&mut sw, &mut conns, &tx, &mut legs);
        if shutdown.is_some() {
            break;
        }
    }
    acceptor.abort();
    for (_, io) in conns.drain() {
        io.reader.abort();
        let _ = io.tx.try_send(WriterMsg::Close);
    }
    if let Some(s) = shutdown {
        let _ = s.send(());
    }
}

/// The running recorder legs by uuid (at most one per live SIP channel: an entry goes when
/// its leg hangs up, fails or gets a BYE), and the mod_oreka forks (at most one per channel).
struct Legs {
    running: HashMap<String, mpsc::Sender<uac::Command>>,
    report: mpsc::Sender<uac::Report>,
    forks: HashMap<String, mpsc::Sender<super::oreka::Command>>,
}

impl Legs {
    fn fork(&mut self, action: super::core::OrekaAction) {
        use super::core::OrekaAction;
        use super::oreka::Command;
        match action {
            OrekaAction::Start { ref uuid, .. } => {
                let uuid = uuid.clone();
                if let Some(tx) = super::oreka::spawn(action) {
                    self.forks.insert(uuid, tx);
                }
            }
            OrekaAction::Audio { uuid, said, heard } => {
                if let Some(tx) = self.forks.get(&uuid)
                    && tx.try_send(Command::Audio { said, heard }).is_err()
                {
                    tracing::warn!(%uuid, "fake switch: oreka fork busy, audio change dropped");
                }
            }
            OrekaAction::Stop { uuid } => {
                if let Some(tx) = self.forks.remove(&uuid) {
                    // A full or closed channel: dropping the sender ends the task (BYEs) too.
                    let _ = tx.try_send(Command::Stop);
                }
            }
        }
    }

    fn act(&mut self, action: RecorderAction) {
        match action {
            RecorderAction::Dial {
                leg,
                to,
                user,
                from,
            } => {
                tracing::debug!(%leg, %to, %user, "fake switch: dialling a recorder leg");
                let tx = uac::spawn(leg.clone(), to, user, from, self.report.clone());
                self.running.insert(leg, tx);
            }
            RecorderAction::Audio { leg, tones_hz } => {
                if let Some(tx) = self.running.get(&leg)
                    && tx.try_send(uac::Command::Audio(tones_hz)).is_err()
                {
                    tracing::warn!(%leg, "fake switch: recorder leg busy, audio change dropped");
                }
            }
            RecorderAction::HangUp { leg, cause } => {
                if let Some(tx) = self.running.remove(&leg) {
                    // A full or closed channel: dropping the sender ends the task (BYE) anyway.
                    let _ = tx.try_send(uac::Command::HangUp(cause));
                }
            }
        }
    }
}

fn drain(
    sw: &mut Switch,
    conns: &mut HashMap<ConnId, ConnIo>,
    tx: &mpsc::Sender<Input>,
    legs: &mut Legs,
) {
    while let Some(out) = sw.poll_output() {
        match out {
            Output::Send(id, msg) => to_writer(conns, id, WriterMsg::Msg(msg)),
            Output::SendRaw(id, bytes) => to_writer(conns, id, WriterMsg::Raw(bytes)),
            Output::Close(id) => {
                if let Some(io) = conns.remove(&id) {
                    io.reader.abort();
                    let _ = io.tx.try_send(WriterMsg::Close);
                }
            }
            Output::Kill(id, notice) => {
                if let Some(mut io) = conns.remove(&id) {
                    io.reader.abort();
                    if let Some(k) = io.kill.take() {
                        let _ = k.send(notice);
                    }
                }
            }
            Output::OpenOutbound { conn, addr, uuid } => {
                let tx = tx.clone();
                tracing::debug!(%addr, %uuid, "fake switch: socket application connecting");
                tokio::spawn(async move {
                    let res = match tokio::time::timeout(
                        Duration::from_secs(5),
                        TcpStream::connect(&addr),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connect timed out",
                        )),
                    };
                    if let Ok(s) = &res {
                        let _ = s.set_nodelay(true);
                    }
                    let _ = tx.send(Input::Outbound(conn, res)).await;
                });
            }
            Output::Recorder(action) => legs.act(action),
            Output::Oreka(action) => legs.fork(action),
            Output::WriteRecording(job) => {
                // Written inline so the file is complete before RECORD_STOP goes out.
                if let Err(e) = super::wav::write_recording(&job) {
                    tracing::warn!(path = %job.path, error = %e, "fake switch: recording not written");
                }
            }
        }
    }
}

fn to_writer(conns: &mut HashMap<ConnId, ConnIo>, id: ConnId, msg: WriterMsg) {
    if let Some(io) = conns.get(&id)
        && io.tx.try_send(msg).is_err()
    {
        tracing::warn!(
            conn = id.0,
            "fake switch: writer queue full, message dropped"
        );
    }
}

fn start_io(id: ConnId, stream: TcpStream, tx: &mpsc::Sender<Input>, capacity: usize) -> ConnIo {
    let (r, w) = stream.into_split();
    let (wtx, wrx) = mpsc::channel(capacity);
    let (ktx, krx) = oneshot::channel();
    let input = tx.clone();
    let reader = tokio::spawn(async move {
        let mut frames = FramedRead::new(r, SwitchCodec::default());
        while let Some(item) = frames.next().await {
            match item {
                Ok(frame) => {
                    if input.send(Input::Command(id, frame)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(conn = id.0, error = %e, "fake switch: unreadable command");
                    break;
                }
            }
        }
        let _ = input.send(Input::Closed(id)).await;
    });
    tokio::spawn(writer(id, w, wrx, krx, tx.clone()));
    ConnIo {
        tx: wtx,
        kill: Some(ktx),
        reader,
    }
}

async fn writer(
    id: ConnId,
    mut w: OwnedWriteHalf,
    mut rx: mpsc::Receiver<WriterMsg>,
    mut kill: oneshot::Receiver<Message>,
    input: mpsc::Sender<Input>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut killed: Option<Message> = None;
    // The kill sender goes away with the connection's entry on an ordinary close: only a
    // message on it means "killed".
    let mut kill_open = true;
    'outer: loop {
        let first = tokio::select! {
            biased;
            k = &mut kill, if kill_open => match k {
                Ok(n) => { killed = Some(n); break 'outer; }
                Err(_) => { kill_open = false; continue; }
            },
            m = rx.recv() => m,
        };
        let Some(first) = first else { break };
        let mut events = 0usize;
        let mut close = false;
        let mut next = Some(first);
        let mut n = 0;
        while let Some(m) = next.take() {
            match m {
                WriterMsg::Msg(msg) => {
                    if matches!(msg, Message::Event(_)) {
                        events += 1;
                    }
                    msg.encode(&mut buf);
                }
                WriterMsg::Raw(b) => buf.extend_from_slice(&b),
                WriterMsg::Close => {
                    close = true;
                    break;
                }
            }
            n += 1;
            if n < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let res = {
            // One write future for the whole batch: restarting it would repeat bytes.
            let write = w.write_all(&buf);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    biased;
                    k = &mut kill, if kill_open => match k {
                        Ok(n) => { killed = Some(n); break 'outer; }
                        Err(_) => kill_open = false,
                    },
                    r = &mut write => break r,
                }
            }
        };
        buf.clear();
        if res.is_err() {
            break;
        }
        if events > 0 {
            let _ = input.send(Input::Flushed(id, events)).await;
        }
        if close {
            break;
        }
    }
    if let Some(notice) = killed {
        let mut b = BytesMut::new();
        notice.encode(&mut b);
        let _ = tokio::time::timeout(Duration::from_secs(1), w.write_all(&b)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
}
