//! The tokio shell around the sans-IO [`Engine`] (feature `driver`).
//!
//! One task owns the engine and `select!`s over everything that can happen; nothing it does
//! waits on FreeSWITCH or on the store:
//!
//! ```text
//!   dialplan `socket` ──▶ OutboundServer ──▶ session task per caller ──┐ arrivals, DTMF, hangups
//!   inbound ESL client ── CHANNEL_ANSWER / CHANNEL_HANGUP_COMPLETE / reconnects ─┤
//!   DriverHandle ── mpsc(api_queue): commands (oneshot reply) and queries ───────┤
//!   sleep_until(the core's next timeout) ────────────────────────────────────────┤
//!                                                                                ▼
//!                                   engine.handle_input(..); drain poll_output():
//!     Output::Switch  ──▶ Event Socket requests, enqueued on the client in emission order;
//!                         their answers are awaited in tasks (max_commands_in_flight, then
//!                         a bounded backlog, then dropped and counted)
//!     Output::Persist ──▶ RecordPipe ──▶ writer task ──▶ RecordSink (batches)
//!     Output::Notify  ──▶ broadcast(live_capacity)
//!     Output::Timeout ──▶ the next sleep_until
//! ```
//!
//! ```no_run
//! use switchyard_engine::config::EngineConfig;
//! use switchyard_engine::driver::{Driver, DriverConfig, NullSink};
//! use switchyard_engine::Engine;
//!
//! # async fn run() -> Result<(), switchyard_engine::driver::DriverError> {
//! let now = tokio::time::Instant::now().into_std();
//! let engine = Engine::new(EngineConfig::default(), 42, now);
//! let config = DriverConfig::new("127.0.0.1:8021", "ClueCon");
//! let driver = Driver::bind(config, engine, "127.0.0.1:8084", NullSink).await?;
//! let handle = driver.handle().clone(); // for the API: command(), query(), subscribe()
//! # let _ = handle;
//! let report = driver.shutdown().await;
//! # let _ = report;
//! # Ok(()) }
//! ```
//!
//! **Order of switch commands.** The core's commands for one leg must reach FreeSWITCH in the
//! order it emitted them (answer before music, break before the announcement, kill after the
//! originate). All requests go over the one inbound connection, whose client writes them in
//! the order they enter its queue and FreeSWITCH answers `api` commands on a connection in
//! order. So the loop enqueues every request itself, in emission order, by polling each
//! request future once before handing it to a task (tokio's mpsc serves senders first come,
//! first served, so a request that found the queue full keeps its place); the tasks only wait
//! for the answers. That gives one global order, which is stronger than per-leg order, and
//! no request ever waits for another's answer. The waiting tasks are spawned once per loop
//! turn (one for the turn's `api` answers, one per originate, whose job reports seconds
//! later), after the turn's requests are all enqueued.
//!
//! **Bridges wait for the handover.** FreeSWITCH's `originate` owns the leg it creates until
//! its job reports, 0-20 ms after the leg's CHANNEL_ANSWER; a `uuid_bridge` in that window is
//! refused or undone. A core `Bridge` whose originated leg is not handed over yet is held (the
//! module `handover`) and sent at the job's `+OK` or the leg's CHANNEL_PARK; CHANNEL_BRIDGE
//! is reported as [`SwitchEvent::Bridged`], a refusal as [`SwitchEvent::BridgeFailed`]. An
//! originate that fails after its leg answered leaves the leg up: it is killed and tracked
//! until its CHANNEL_HANGUP_COMPLETE, and a periodic sweep kills originated legs the core no
//! longer uses (`sweep_interval`).
//!
//! **Kills that overtake their originate.** FreeSWITCH runs `bgapi originate` in a thread of
//! its own, so a `uuid_kill` right behind it can find no channel yet. Until the originate's
//! job reports, such a kill is retried (`kill_retry`), and a leg that answers after we wanted
//! it gone is killed again.
//!
//! **Recovery.** After a reconnect (or when the client had to drop events) the loop asks
//! `show channels as json` and feeds [`SwitchEvent::Resync`] with the legs listed, plus the
//! legs it originated or saw arrive after the question was sent; `restarted` is the client's
//! Core-UUID comparison. A caller socket that closes without a hangup is checked with
//! `uuid_exists` after `orphan_grace` unless a resync covers it; a vanished leg is reported
//! as [`HangupCause::Lost`].
//!
//! **Prompts and sounds.** A caller has at most one prompt of ours on the switch at a time;
//! the next ones wait in the driver until the playing one's CHANNEL_EXECUTE_COMPLETE, and
//! the music resumes after the last (module `prompts`, for why FreeSWITCH's own broadcast
//! queue is not enough). At each connect every configured sound is checked with
//! `file_exists` on that node, and a missing one is played as a tone there (module `sounds`).
//!
//! **Records** never block the loop; see [`RecordSink`] and the module `records` for the
//! bounds (a full pipe parks records, a full parking lot drops and counts them).
//!
//! **Several FreeSWITCH nodes.** The driver holds one inbound connection per node
//! ([`DriverConfig::add_node`]) and one outbound-socket listener that every node's dialplan
//! points at. Each leg has a home node, and every command for a leg goes over its home's
//! connection (so the order argument above holds per node, which is per leg):
//! - a caller's home is the node its socket came from: the CHANNEL_DATA's `Core-UUID`
//!   matched against each node's current one, then the `switchyard_node` channel variable,
//!   then the peer address (see `nodes::place_caller` for the full order and why);
//! - an agent leg (and a callback customer while the caller's leg lives) is originated on the
//!   caller's node, so that `uuid_bridge` finds both legs on one switch; a supervisor's leg on
//!   the node of the leg it eavesdrops on (`eavesdrop` only sees local channels);
//! - a campaign dial (and a callback whose caller is gone) goes to the connected node with
//!   the fewest legs, round-robin on ties; a node that is down gets nothing new, and with no
//!   node up the originate fails at once (the core hears `LegHungUp { Failed }`).
//!
//! Each node reconnects and resyncs on its own (its own Core-UUID comparison, its own `show
//! channels`). The core's [`SwitchEvent::Resync`] means "every leg not listed is gone", so a
//! resync of node A lists A's live legs *plus every leg the driver believes alive on the other
//! nodes*: A's restart closes A's calls and nobody else's, without the core knowing about
//! nodes. [`DriverHandle::connected`] is true while at least one node is connected (the engine
//! can still take calls); [`DriverHandle::nodes`] shows each node.
//!
//! **Answering-machine detection.** For legs originated as [`LegKind::Campaign`] only, the
//! driver reports [`SwitchEvent::MachineDetection`] once per leg, from either
//! - mod_amd: `CHANNEL_EXECUTE_COMPLETE` with `Application: amd`; the verdict is
//!   `variable_amd_result` (HUMAN / MACHINE / NOTSURE, see [`crate::io::AmdResult`]); or
//! - mod_avmd: `CUSTOM avmd::beep` (a beep means a machine; avmd never says "human", so the
//!   core's AMD timeout decides those).
//!
//! The engine asks for detection with the originate's channel variables:
//! `execute_on_answer=amd` (mod_amd) or `execute_on_answer=avmd_start` (mod_avmd). The
//! driver subscribes to both events on every node ([`DRIVER_EVENTS`]) and drops the ones of
//! other legs.

mod commands;
mod config;
mod error;
mod handover;
mod nodes;
mod playback;
mod prompts;
mod records;
mod resync;
mod session;
mod sounds;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use switchyard_esl::EslError;
use switchyard_esl::client::{Client, ClientConfig, ClientEvent, EventStream, JobResult};
use switchyard_esl::server::OutboundServer;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::Engine;
use crate::error::EngineError;
use crate::ids::QueueId;
use crate::io::{
    AmdResult, Command, HangupCause, Input, LegId, LegKind, LiveEvent, Output, Record,
    SwitchCommand, SwitchEvent,
};

pub use config::{DRIVER_EVENTS, DriverConfig, NODE_VARIABLE, NodeConfig, Probe, PromptTemplates};
pub use error::DriverError;
pub use nodes::NodeStatus;
pub use records::{NullSink, RecordSink};

use nodes::{Homes, NodeCounters, NodeView};

use commands::{EslRequest, Syntax, Tracking};
use handover::Handover;
use records::RecordPipe;
use session::{RouteKeys, SessionMsg};

/// A read of the engine's state, run on the loop between inputs.
pub type Query = Box<dyn FnOnce(&Engine) + Send>;

enum ApiRequest {
    Command(Command, oneshot::Sender<Result<(), EngineError>>),
    Query(Query),
    /// Replaces the number/name -> queue routes (a queue's numbers changed through the API).
    Routes(HashMap<String, QueueId>),
    /// A switch command sent as if the core had emitted it (tests, operator tooling).
    Inject(SwitchCommand),
}

/// The driver's counters (monotonic since start, except `backlog`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Caller sockets whose arrival reached the loop.
    pub calls_arrived: u64,
    /// ... of which no queue matched (hung up with `unrouted_cause`).
    pub calls_unrouted: u64,
    /// Switch commands whose requests were enqueued on the Event Socket client.
    pub commands_sent: u64,
    /// Requests that failed (connection lost, refused, malformed) or answered `-ERR`, kills of
    /// gone channels excepted.
    pub commands_failed: u64,
    /// Commands dropped because `max_commands_in_flight` and `command_backlog` were both full.
    pub commands_dropped: u64,
    /// Commands waiting for an in-flight slot now.
    pub backlog: u64,
    /// Records the core produced.
    pub records: u64,
    /// Records the sink accepted.
    pub records_written: u64,
    /// Records lost because the store fell too far behind (or the sink could not keep them).
    pub records_dropped: u64,
    /// Resyncs fed to the core.
    pub resyncs: u64,
    /// Events the Event Socket client dropped because the loop was behind.
    pub events_lagged: u64,
    /// Legs reported lost after their socket closed without a hangup.
    pub legs_lost: u64,
    /// Callers hung up because no node could be told as theirs (see the module doc).
    pub calls_without_node: u64,
    /// Answering-machine verdicts fed to the core.
    pub machine_detections: u64,
    /// Bridges held back until FreeSWITCH handed an originated leg over (see `handover`).
    pub bridges_held: u64,
    /// Bridges FreeSWITCH refused, or lost because a leg's originate failed under them.
    pub bridges_failed: u64,
    /// Originates whose job failed after their leg answered (the leg was killed).
    pub originates_failed_after_answer: u64,
    /// Legs this driver originated that outlived the core's use for them and were killed by
    /// the sweep.
    pub orphans_killed: u64,
    /// Configured sounds found missing on a node (each warned once per node; callers there
    /// hear [`DriverConfig::fallback_music`] / `fallback_prompt` instead).
    pub sounds_missing: u64,
    /// Prompts that waited for the one playing before them (see the module `prompts`).
    pub prompts_queued: u64,
    /// Prompts whose end was never reported and counted as ended at `prompt_timeout`.
    pub prompts_overdue: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// One per node, in configuration order.
    nodes: Vec<NodeCounters>,
    calls_arrived: AtomicU64,
    calls_unrouted: AtomicU64,
    commands_sent: AtomicU64,
    commands_failed: AtomicU64,
    commands_dropped: AtomicU64,
    backlog: AtomicU64,
    records: AtomicU64,
    records_written: AtomicU64,
    records_dropped: AtomicU64,
    resyncs: AtomicU64,
    events_lagged: AtomicU64,
    legs_lost: AtomicU64,
    calls_without_node: AtomicU64,
    machine_detections: AtomicU64,
    bridges_held: AtomicU64,
    bridges_failed: AtomicU64,
    originates_failed_after_answer: AtomicU64,
    orphans_killed: AtomicU64,
    sounds_missing: AtomicU64,
    prompts_queued: AtomicU64,
    prompts_overdue: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DriverStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DriverStats {
            calls_arrived: g(&self.calls_arrived),
            calls_unrouted: g(&self.calls_unrouted),
            commands_sent: g(&self.commands_sent),
            commands_failed: g(&self.commands_failed),
            commands_dropped: g(&self.commands_dropped),
            backlog: g(&self.backlog),
            records: g(&self.records),
            records_written: g(&self.records_written),
            records_dropped: g(&self.records_dropped),
            resyncs: g(&self.resyncs),
            events_lagged: g(&self.events_lagged),
            legs_lost: g(&self.legs_lost),
            calls_without_node: g(&self.calls_without_node),
            machine_detections: g(&self.machine_detections),
            bridges_held: g(&self.bridges_held),
            bridges_failed: g(&self.bridges_failed),
            originates_failed_after_answer: g(&self.originates_failed_after_answer),
            orphans_killed: g(&self.orphans_killed),
            sounds_missing: g(&self.sounds_missing),
            prompts_queued: g(&self.prompts_queued),
            prompts_overdue: g(&self.prompts_overdue),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// The API side of a running driver. Cheap to clone.
#[derive(Clone)]
pub struct DriverHandle {
    api: mpsc::Sender<ApiRequest>,
    live: broadcast::Sender<LiveEvent>,
    counters: Arc<Counters>,
    stop: Arc<watch::Sender<bool>>,
    outbound_addr: SocketAddr,
}

impl std::fmt::Debug for DriverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverHandle")
            .field("outbound_addr", &self.outbound_addr)
            .field("stopped", &self.api.is_closed())
            .finish()
    }
}

impl DriverHandle {
    /// Runs a command on the core; the core's verdict comes back.
    pub async fn command(&self, cmd: Command) -> Result<(), DriverError> {
        let (tx, rx) = oneshot::channel();
        self.api
            .send(ApiRequest::Command(cmd, tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await
            .map_err(|_| DriverError::Stopped)?
            .map_err(DriverError::Engine)
    }

    /// Reads the engine's state (on the loop, between two inputs, so the view is consistent).
    /// Keep `read` short: the loop waits for it.
    pub async fn query<R, F>(&self, read: F) -> Result<R, DriverError>
    where
        R: Send + 'static,
        F: FnOnce(&Engine) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let q: Query = Box::new(move |engine: &Engine| {
            let _ = tx.send(read(engine));
        });
        self.api
            .send(ApiRequest::Query(q))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Replaces the routing table (queue names and dialled numbers -> queue) at run time;
    /// callers already in a queue are not affected.
    pub async fn set_routes(&self, routes: HashMap<String, QueueId>) -> Result<(), DriverError> {
        self.api
            .send(ApiRequest::Routes(routes))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// Sends a switch command as if the core had emitted it: it goes to its leg's node (an
    /// originate is placed like the core's own) and its outcome is reported to the core.
    /// For wire-level tests and operator tooling (the core does not expect what it did not
    /// ask for, so use it on legs the core does not own), and for the commands a core emitted
    /// before the driver ran (loaded from a store at boot).
    #[doc(hidden)]
    pub async fn inject_switch_command(&self, cmd: SwitchCommand) -> Result<(), DriverError> {
        self.api
            .send(ApiRequest::Inject(cmd))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// Live events from now on. A subscriber more than `live_capacity` events behind gets
    /// `RecvError::Lagged` and continues with the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// Whether at least one node's inbound Event Socket connection is up right now: the
    /// engine can take and place calls. With several nodes, [`DriverHandle::nodes`] tells
    /// which are up (a readiness probe that needs every node should look there).
    pub fn connected(&self) -> bool {
        self.counters
            .nodes
            .iter()
            .any(|n| n.connected.load(Ordering::Relaxed))
    }

    /// Each node: name, address, connection, legs, Core-UUID, resyncs (configuration order).
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.counters
            .nodes
            .iter()
            .map(NodeCounters::status)
            .collect()
    }

    pub fn stats(&self) -> DriverStats {
        self.counters.snapshot()
    }

    /// Where the dialplan's `socket` application must connect.
    pub fn outbound_addr(&self) -> SocketAddr {
        self.outbound_addr
    }

    /// Asks the loop to stop (see [`Driver::shutdown`]); returns at once.
    pub fn request_shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// A running driver: its loop task and a handle on it.
#[derive(Debug)]
pub struct Driver {
    handle: DriverHandle,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

/// What [`Driver::shutdown`] did, and the engine as it was left.
#[derive(Debug)]
pub struct ShutdownReport {
    pub engine: Engine,
    /// Switch commands still unanswered when the grace period ended (their tasks were
    /// dropped; the requests may have reached FreeSWITCH).
    pub commands_abandoned: usize,
    /// Commands never sent (still in the backlog).
    pub commands_unsent: usize,
    /// Whether the record writer handed everything to the sink in time.
    pub records_flushed: bool,
    pub stats: DriverStats,
}

impl Driver {
    /// Binds the outbound-socket listener at `addr` and starts.
    pub async fn bind<S: RecordSink>(
        config: DriverConfig,
        engine: Engine,
        addr: &str,
        sink: S,
    ) -> Result<Driver, DriverError> {
        let listener = TcpListener::bind(addr).await?;
        Self::start(config, engine, listener, sink).await
    }

    /// Connects to every FreeSWITCH node, starts the outbound-socket server on `listener`, the
    /// record writer and the loop. The first attempts run at once; an error is returned when a
    /// node refuses the password (a configuration mistake) or when no node could be reached.
    /// A node that is merely unreachable starts disconnected and is retried in the background
    /// with its own backoff; it gets no legs until it is up.
    pub async fn start<S: RecordSink>(
        config: DriverConfig,
        engine: Engine,
        listener: TcpListener,
        sink: S,
    ) -> Result<Driver, DriverError> {
        let specs = node_specs(&config)?;
        let server = OutboundServer::from_listener(listener, config.server.clone())?;
        let outbound_addr = server.local_addr();
        let mut attempts = JoinSet::new();
        for (i, spec) in specs.iter().enumerate() {
            let esl = spec.esl.clone();
            attempts.spawn(async move { (i, Client::connect(esl).await) });
        }
        let mut first: Vec<Option<Result<(Client, EventStream), EslError>>> =
            specs.iter().map(|_| None).collect();
        while let Some(joined) = attempts.join_next().await {
            if let Ok((i, r)) = joined {
                first[i] = Some(r);
            }
        }
        let mut nodes = Vec::with_capacity(specs.len());
        let mut first_error = None;
        let mut any_up = false;
        for (spec, attempt) in specs.into_iter().zip(first) {
            let attempt = attempt.unwrap_or(Err(EslError::ConnectionClosed));
            let (client, events) = match attempt {
                Ok((c, e)) => {
                    any_up = true;
                    (Some(c), Some(e))
                }
                Err(e @ (EslError::AuthFailed { .. } | EslError::AccessDenied { .. })) => {
                    return Err(DriverError::Esl(e));
                }
                Err(e) => {
                    warn!(node = %spec.name, addr = %spec.esl.addr, error = %e, "FreeSWITCH node unreachable; retrying in the background");
                    first_error.get_or_insert(e);
                    (None, None)
                }
            };
            nodes.push(Node::new(spec, client, events));
        }
        if !any_up {
            return Err(DriverError::Esl(
                first_error.unwrap_or(EslError::ConnectionClosed),
            ));
        }

        let counters = Arc::new(Counters {
            nodes: nodes
                .iter()
                .map(|n| NodeCounters::new(n.name.clone(), n.cfg.addr.clone()))
                .collect(),
            ..Counters::default()
        });
        for (n, c) in nodes.iter().zip(&counters.nodes) {
            c.connected.store(n.connected, Ordering::Relaxed);
        }
        let (api_tx, api_rx) = mpsc::channel(config.api_queue.max(1));
        let (live, _) = broadcast::channel(config.live_capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let (records_tx, records_rx) = mpsc::channel(config.record_queue.max(1));
        let writer = tokio::spawn(records::writer(
            records_rx,
            sink,
            config.record_batch,
            Arc::clone(&counters),
        ));
        let (sessions_tx, sessions_rx) = mpsc::channel(config.session_queue.max(1));
        // Replaced by the core's own answer in the drain below.
        let deadline = now() + Duration::from_secs(3600);
        let homes = Homes::new(nodes.len());
        let sounds = sounds::Sounds::new(
            nodes.len(),
            config.fallback_music.clone(),
            config.fallback_prompt.clone(),
        );
        let mut core = Loop {
            engine,
            nodes,
            homes,
            next_node: 0,
            event_turn: 0,
            server: Some(server),
            sessions_tx,
            sessions_rx,
            session_tasks: JoinSet::new(),
            api_rx,
            stop_rx,
            live: live.clone(),
            records: RecordPipe::new(records_tx, config.record_overflow, Arc::clone(&counters)),
            writer: Some(writer),
            counters: Arc::clone(&counters),
            syntax: Syntax {
                prompts: config.prompts.clone(),
                transfer_dialplan: config.transfer_dialplan.clone(),
                transfer_context: config.transfer_context.clone(),
                monitor_ring_timeout: config.monitor_ring_timeout,
            },
            cfg: config,
            learned: HashMap::new(),
            inflight: JoinSet::new(),
            inflight_commands: 0,
            inflight_sizes: HashMap::new(),
            unwaited: Vec::new(),
            chores: JoinSet::new(),
            backlog: VecDeque::new(),
            originated: HashMap::new(),
            callers: HashSet::new(),
            caller_queues: HashMap::new(),
            followups: VecDeque::new(),
            deadline,
            handover: Handover::new(MAX_HELD_BRIDGES),
            prompts: prompts::Prompts::default(),
            sounds,
        };
        core.schedule_sweep();
        for i in 0..core.nodes.len() {
            if core.nodes[i].client.is_none() {
                core.reconnect_later(i);
            }
        }
        // The core's first timeout (and any outputs it holds already).
        core.drain();
        let task = tokio::spawn(core.run());
        Ok(Driver {
            handle: DriverHandle {
                api: api_tx,
                live,
                counters,
                stop: Arc::new(stop),
                outbound_addr,
            },
            task,
        })
    }

    pub fn handle(&self) -> &DriverHandle {
        &self.handle
    }

    /// Stops accepting callers and API requests, waits up to `shutdown_grace` for commands in
    /// flight and for the record writer, closes the Event Socket connection, and returns the
    /// engine. Caller sockets close with the driver (FreeSWITCH then ends those calls); hand
    /// them elsewhere first if they must survive.
    pub async fn shutdown(self) -> Result<ShutdownReport, DriverError> {
        self.handle.request_shutdown();
        self.task.await.map_err(|e| {
            error!(error = %e, "driver task failed");
            DriverError::Stopped
        })
    }
}

/// Time as the loop sees it: tokio's clock (pausable in tests), as `std::time::Instant` for
/// the core.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

// ---- the loop -----------------------------------------------------------------------------

/// An Event Socket answer the loop looks at.
#[derive(Debug)]
enum Answer {
    /// `api` output (`+OK ...`, `-ERR ...`, JSON).
    Api(Vec<u8>),
    /// A bgapi job's BACKGROUND_JOB.
    Job(JobResult),
}

type Reply = Result<Answer, EslError>;
type PendingReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// A request that has been polled once: it is in the client's queue (or already answered).
enum Started {
    Ready(Reply),
    Waiting(PendingReply),
}

impl Started {
    async fn finish(self) -> Reply {
        match self {
            Started::Ready(r) => r,
            Started::Waiting(f) => f.await,
        }
    }
}

/// One command's requests, enqueued on the client, waiting for their answers.
struct Waiting {
    /// The node the requests went to.
    node: usize,
    tracking: Tracking,
    /// For kills: the cause and how many times it was tried.
    kill: Option<(&'static str, u32)>,
    started: Vec<Started>,
}

/// One command's answers.
#[derive(Debug)]
struct CommandDone {
    node: usize,
    tracking: Tracking,
    kill: Option<(&'static str, u32)>,
    replies: Vec<Reply>,
}

/// What finished in a task.
#[derive(Debug)]
enum Done {
    /// Commands of one loop turn, answered (in order: FreeSWITCH answers one connection's
    /// `api`s in order, so waiting for them one by one costs nothing).
    Commands(Vec<CommandDone>),
    ResyncQuery {
        node: usize,
        epoch: u64,
        reply: Reply,
    },
    ResyncRetry {
        node: usize,
        epoch: u64,
    },
    KillRetry {
        leg: LegId,
        cause: &'static str,
        attempt: u32,
    },
    OrphanCheck {
        leg: LegId,
        node: usize,
        epoch: u64,
    },
    OrphanAnswer {
        leg: LegId,
        reply: Reply,
    },
    /// Time for the next orphan sweep.
    Sweep,
    /// Prompt deadlines and sound-check answers (module `playback`).
    Playback(playback::PlaybackDone),
    /// A node that was down at start answered (or not) a background connection attempt.
    NodeUp {
        node: usize,
        result: Result<Fresh, EslError>,
    },
    Nothing,
}

/// A leg the driver originated (agent, callback customer, supervisor).
#[derive(Clone, Copy, Debug)]
struct Originated {
    answered: bool,
    /// The originate's job reported (answered or failed) or can no longer report.
    job_done: bool,
    /// The core asked for this leg to be hung up, with this cause.
    kill: Option<&'static str>,
    /// A callback customer: the caller's side of a call, for eavesdrop whisper direction.
    customer: bool,
    /// The arrival leg of the call this leg was dialled for (its CDR's call), if any, and
    /// the queue the call was in.
    call_leg: Option<(LegId, QueueId)>,
    /// A campaign dial: answering-machine verdicts are reported for it.
    campaign: bool,
    /// A verdict was reported already (mod_amd and mod_avmd may both run).
    amd_reported: bool,
    /// FreeSWITCH's originate let go of the leg (job `+OK` or the leg's CHANNEL_PARK): a
    /// bridge to it is safe from now on (see `handover`).
    handed_over: bool,
    /// The leg was handed to the dialplan (transfer, message then hangup) or injected by
    /// tooling: it lives on its own and the sweep leaves it alone.
    exempt: bool,
    /// Consecutive sweeps that found the core with no use for the leg.
    unowned_sweeps: u8,
}

/// A resync question in flight.
#[derive(Debug)]
struct Resync {
    epoch: u64,
    restarted: bool,
    /// Legs originated or arrived after the question was sent: the answer cannot list them.
    extra: HashSet<LegId>,
}

/// Kills that failed because the connection was lost, re-sent after the resync if the leg
/// is still there. Beyond this many the oldest knowledge is simply not kept.
const MAX_FAILED_KILLS: usize = 65_536;
/// After a resync answer that could not be read, ask again this much later.
const RESYNC_RETRY: Duration = Duration::from_secs(1);
/// Bridges held for a leg's handover at once (one per call connecting; see `handover`).
const MAX_HELD_BRIDGES: usize = 65_536;

/// The nodes (in configuration order) with their driver events added; names must be unique.
fn node_specs(config: &DriverConfig) -> Result<Vec<NodeConfig>, DriverError> {
    let driver_events = switchyard_esl::codec::EventSet::parse(DRIVER_EVENTS);
    let mut specs = config.nodes();
    let mut names = HashSet::new();
    for spec in &mut specs {
        if spec.name.trim().is_empty() || !names.insert(spec.name.clone()) {
            return Err(DriverError::Config(format!(
                "node names must be unique and not empty: {:?}",
                spec.name
            )));
        }
        let events = &mut spec.esl.events;
        events.add_names(driver_events.names.iter().cloned());
        for sub in &driver_events.subclasses {
            if !events.subclasses.iter().any(|s| s == sub) {
                events.subclasses.push(sub.clone());
            }
        }
    }
    Ok(specs)
}

/// A connection made in the background (a node that was down at start).
struct Fresh(Client, EventStream);

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fresh")
    }
}

/// One FreeSWITCH node: its inbound connection and what the loop knows about it.
struct Node {
    name: String,
    cfg: ClientConfig,
    /// `None` until the first connection succeeds (a node down at start).
    client: Option<Client>,
    events: Option<EventStream>,
    connected: bool,
    seen_connect: bool,
    core_uuid: Option<String>,
    /// The Event Socket host, when it is an IP literal (to place callers by peer address).
    ip: Option<IpAddr>,
    /// The next background connection attempt waits this long (node down at start).
    retry: Duration,
    resync: Option<Resync>,
    /// Resyncs started so far; an orphan check from an older epoch is covered by a resync.
    resync_epoch: u64,
    failed_kills: HashMap<LegId, &'static str>,
}

impl Node {
    fn new(spec: NodeConfig, client: Option<Client>, events: Option<EventStream>) -> Node {
        let ip = spec
            .esl
            .addr
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        Node {
            name: spec.name,
            retry: spec.esl.backoff.initial,
            cfg: spec.esl,
            connected: client.is_some(),
            client,
            events,
            seen_connect: false,
            core_uuid: None,
            ip,
            resync: None,
            resync_epoch: 0,
            failed_kills: HashMap::new(),
        }
    }
}

/// The next event of any node (nodes taken in turn from `turn`, so one busy node cannot
/// starve the others). A stream that ended answers `None` once; its node is then marked.
async fn next_event(nodes: &mut [Node], turn: usize) -> (usize, Option<ClientEvent>) {
    std::future::poll_fn(|cx| {
        let n = nodes.len();
        for k in 0..n {
            let i = (turn + k) % n;
            let Some(events) = nodes[i].events.as_mut() else {
                continue;
            };
            // `recv` only polls the channel: dropping it unfinished loses nothing, and the
            // channel keeps the waker registered by this poll.
            let fut = events.recv();
            let mut fut = std::pin::pin!(fut);
            if let Poll::Ready(ev) = fut.as_mut().poll(cx) {
                return Poll::Ready((i, ev));
            }
        }
        Poll::Pending
    })
    .await
}

struct Loop {
    engine: Engine,
    nodes: Vec<Node>,
    /// Which node each leg lives on.
    homes: Homes,
    /// Round-robin cursor of [`nodes::least_loaded`].
    next_node: usize,
    /// Which node's events are looked at first next time.
    event_turn: usize,
    server: Option<OutboundServer>,
    sessions_tx: mpsc::Sender<SessionMsg>,
    sessions_rx: mpsc::Receiver<SessionMsg>,
    /// Caller socket tasks; dropped (sockets closed) with the loop. Bounded by the server's
    /// `max_connections`.
    session_tasks: JoinSet<()>,
    api_rx: mpsc::Receiver<ApiRequest>,
    stop_rx: watch::Receiver<bool>,
    live: broadcast::Sender<LiveEvent>,
    records: RecordPipe,
    writer: Option<tokio::task::JoinHandle<()>>,
    counters: Arc<Counters>,
    syntax: Syntax,
    cfg: DriverConfig,
    /// Queue names learned from `UpsertQueue` commands.
    learned: HashMap<String, QueueId>,
    /// Tasks waiting for switch commands' answers: one per loop turn and node for `api`
    /// commands, one per originate (its job reports when the leg answers, seconds later).
    inflight: JoinSet<Done>,
    /// Commands in `inflight` (bounded by `max_commands_in_flight`), and per task.
    inflight_commands: usize,
    inflight_sizes: HashMap<tokio::task::Id, usize>,
    /// Commands enqueued on a client during this loop turn, whose answers are not waited
    /// for yet: the wait tasks are spawned at the end of the turn, so that the cost of
    /// spawning never sits between the core's decision and the request reaching the client.
    unwaited: Vec<Waiting>,
    /// The loop's own errands: resync questions, retries, orphan checks, unrouted hangups,
    /// connection attempts for nodes that were down at start.
    chores: JoinSet<Done>,
    /// Commands waiting for an in-flight slot (bounded by `command_backlog`).
    backlog: VecDeque<SwitchCommand>,
    originated: HashMap<LegId, Originated>,
    /// Caller legs (with a socket) the core knows, until their hangup is reported.
    callers: HashSet<LegId>,
    /// The queue each caller was routed to, kept until its CHANNEL_HANGUP_COMPLETE (the
    /// session may report the hangup first) so its CDR can be filed under its call.
    caller_queues: HashMap<LegId, QueueId>,
    /// Switch events the loop itself produced (failed originates, answers seen in job
    /// results), fed after the current drain.
    followups: VecDeque<SwitchEvent>,
    /// The core's next timeout.
    deadline: Instant,
    /// Bridges waiting for FreeSWITCH to hand their originated legs over.
    handover: Handover,
    /// Prompts waiting for the one playing on their leg (module `prompts`).
    prompts: prompts::Prompts,
    /// Which configured sounds each node lacks (module `sounds`).
    sounds: sounds::Sounds,
}

impl Loop {
    async fn run(mut self) -> ShutdownReport {
        let sleep = tokio::time::sleep_until(self.deadline.into());
        tokio::pin!(sleep);
        loop {
            self.feed_followups();
            self.spawn_waits();
            sleep.as_mut().reset(self.deadline.into());
            let refill = self.records.has_overflow().then(|| self.records.sender());
            let any_events = self.nodes.iter().any(|n| n.events.is_some());
            self.event_turn = self.event_turn.wrapping_add(1);
            let turn = self.event_turn;
            tokio::select! {
                changed = self.stop_rx.changed() => {
                    // A dropped sender means every handle is gone: nobody can use us any more.
                    if changed.is_err() || *self.stop_rx.borrow() {
                        break;
                    }
                }
                req = self.api_rx.recv() => match req {
                    Some(req) => self.on_api(req),
                    None => break,
                },
                Some(msg) = self.sessions_rx.recv() => self.on_session(msg),
                (node, ev) = next_event(&mut self.nodes, turn), if any_events => {
                    self.on_client_event(node, ev);
                }
                Some(session) = accept(&mut self.server) => {
                    let tx = self.sessions_tx.clone();
                    self.session_tasks.spawn(session::run(session, tx));
                }
                Some(done) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    let done = match done {
                        Ok((id, d)) => {
                            self.wait_ended(id);
                            Ok(d)
                        }
                        Err(e) => {
                            self.wait_ended(e.id());
                            Err(e)
                        }
                    };
                    self.on_joined(done);
                    self.pump_backlog();
                }
                Some(done) = self.chores.join_next(), if !self.chores.is_empty() => {
                    self.on_joined(done);
                }
                Some(_) = self.session_tasks.join_next(), if !self.session_tasks.is_empty() => {}
                Ok(permit) = reserve(refill) => self.records.refill(permit),
                () = &mut sleep => {
                    if let Err(e) = self.feed(Input::Timeout(now())) {
                        warn!(error = %e, "the core refused a timeout");
                    }
                }
            }
        }
        self.shutdown().await
    }

    // ---- feeding the core -----------------------------------------------------------------

    fn feed(&mut self, input: Input) -> Result<(), EngineError> {
        let result = self.engine.handle_input(input);
        self.drain();
        result
    }

    fn feed_switch(&mut self, ev: SwitchEvent) {
        if let Err(e) = self.feed(Input::Switch(now(), ev)) {
            warn!(error = %e, "the core refused a switch event");
        }
    }

    fn feed_followups(&mut self) {
        while let Some(ev) = self.followups.pop_front() {
            self.feed_switch(ev);
        }
    }

    fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Switch(cmd) => self.switch(cmd),
                Output::Persist(r) => self.records.push(r),
                Output::Notify(ev) => {
                    if let LiveEvent::CallBridgeFailed {
                        call,
                        agent,
                        reason,
                    } = &ev
                    {
                        warn!(%call, %agent, ?reason, "call not bridged to its agent; the agent leg is let go");
                    }
                    if let LiveEvent::CampaignPacing {
                        campaign,
                        pacing,
                        brake,
                    } = &ev
                    {
                        use crate::dialer::connect::Brake;
                        match brake {
                            Some(Brake::SlowAgents | Brake::OverTarget) => {
                                warn!(%campaign, pacing, ?brake, "progressive campaign rings agents first: its persons could not be connected within the allowance");
                            }
                            _ => info!(%campaign, pacing, ?brake, "progressive campaign pacing"),
                        }
                    }
                    // No subscriber is not an error.
                    let _ = self.live.send(ev);
                }
                Output::Timeout(t) => {
                    self.deadline = t;
                    break;
                }
            }
        }
        self.counters
            .backlog
            .store(self.backlog.len() as u64, Ordering::Relaxed);
    }

    // ---- switch commands ------------------------------------------------------------------

    /// A command from the core: sent now, or queued behind earlier ones.
    fn switch(&mut self, cmd: SwitchCommand) {
        if self.backlog.is_empty()
            && self.commands_in_flight() < self.cfg.max_commands_in_flight.max(1)
        {
            self.issue(cmd);
            return;
        }
        if self.backlog.len() < self.cfg.command_backlog {
            self.backlog.push_back(cmd);
            return;
        }
        bump(&self.counters.commands_dropped);
        error!(command = ?cmd, "switch command dropped: in-flight and backlog bounds both full");
        if let Some(leg) = originated_leg(&cmd) {
            self.followups.push_back(SwitchEvent::LegHungUp {
                leg,
                cause: HangupCause::Failed,
            });
        }
    }

    fn pump_backlog(&mut self) {
        let max = self.cfg.max_commands_in_flight.max(1);
        while self.commands_in_flight() < max {
            let Some(cmd) = self.backlog.pop_front() else {
                break;
            };
            self.issue(cmd);
        }
        self.counters
            .backlog
            .store(self.backlog.len() as u64, Ordering::Relaxed);
    }

    fn issue(&mut self, cmd: SwitchCommand) {
        // Music and prompts go through the prompt queue (module `playback`).
        let Some(cmd) = self.before_issue(cmd) else {
            return;
        };
        match &cmd {
            SwitchCommand::Bridge { a, b }
                if self.owned_by_originate(*a) || self.owned_by_originate(*b) =>
            {
                if self.handover.hold(*a, *b) {
                    bump(&self.counters.bridges_held);
                    debug!(%a, %b, "bridge held until FreeSWITCH hands the leg over");
                    return;
                }
                warn!(%a, %b, "too many bridges held; sending this one before the handover");
            }
            SwitchCommand::Hangup { leg, .. } => {
                // The core let the leg go: a bridge held for it has no one waiting.
                self.handover.drop_leg(*leg);
            }
            SwitchCommand::Transfer { leg, .. } | SwitchCommand::PlayThenHangup { leg, .. } => {
                if let Some(o) = self.originated.get_mut(leg) {
                    o.exempt = true;
                }
            }
            _ => {}
        }
        let Some(node) = self.node_for(&cmd) else {
            // Only originates with no connected node to go to end up here.
            bump(&self.counters.commands_failed);
            warn!(command = ?cmd, "no FreeSWITCH node is connected; originate not sent");
            if let Some(leg) = originated_leg(&cmd) {
                self.followups.push_back(SwitchEvent::LegHungUp {
                    leg,
                    cause: HangupCause::Failed,
                });
            }
            return;
        };
        let target_is_caller = match &cmd {
            SwitchCommand::Eavesdrop { target, .. } => self.is_caller_side(*target),
            _ => false,
        };
        let (requests, tracking) = match commands::plan(&cmd, &self.syntax, target_is_caller) {
            Ok(p) => p,
            Err(e) => {
                bump(&self.counters.commands_failed);
                warn!(error = %e, command = ?cmd, "switch command not sent");
                if let Some(leg) = originated_leg(&cmd) {
                    self.followups.push_back(SwitchEvent::LegHungUp {
                        leg,
                        cause: HangupCause::Failed,
                    });
                }
                return;
            }
        };
        let mut kill = None;
        match (tracking, &cmd) {
            (Tracking::Originate(leg), _) => {
                let kind = match &cmd {
                    SwitchCommand::Originate { kind, .. } => Some(*kind),
                    _ => None,
                };
                let call_leg = self
                    .engine
                    .call_by_leg(leg)
                    .and_then(|c| self.engine.call_info(c))
                    .map(|c| (c.origin_leg, c.queue));
                self.originated.insert(
                    leg,
                    Originated {
                        answered: false,
                        job_done: false,
                        kill: None,
                        customer: matches!(kind, Some(LegKind::Customer | LegKind::Campaign)),
                        call_leg,
                        campaign: kind == Some(LegKind::Campaign),
                        amd_reported: false,
                        handed_over: false,
                        exempt: false,
                        unowned_sweeps: 0,
                    },
                );
                self.set_home(leg, node);
                if let Some(r) = &mut self.nodes[node].resync {
                    r.extra.insert(leg);
                }
            }
            (Tracking::Kill(leg), SwitchCommand::Hangup { cause, .. }) => {
                if let Some(o) = self.originated.get_mut(&leg) {
                    o.kill = Some(*cause);
                }
                kill = Some((*cause, 1));
            }
            _ => {}
        }
        self.send_requests(node, requests, tracking, kill);
        bump(&self.counters.commands_sent);
        if let Some(p) = &self.cfg.probe {
            p.command_sent(&cmd, now());
        }
    }

    /// The node a command goes to (see the module doc). `None` only for an originate when no
    /// node is connected.
    fn node_for(&mut self, cmd: &SwitchCommand) -> Option<usize> {
        let home = |l: &LegId| self.homes.get(*l);
        match cmd {
            SwitchCommand::Originate { kind, leg, .. } => {
                let call_home = self.call_node(*leg);
                match (kind, call_home) {
                    // uuid_bridge needs both legs on one switch: the caller's, even when it
                    // is down (then the originate fails and the core offers again).
                    (LegKind::Agent, Some(n)) => Some(n),
                    // A callback's or a preview's customer joins the agent already up.
                    (LegKind::Customer | LegKind::Campaign, Some(n)) if self.nodes[n].connected => {
                        Some(n)
                    }
                    _ => self.least_loaded(),
                }
            }
            SwitchCommand::Eavesdrop { target, .. } => home(target).or_else(|| self.least_loaded()),
            SwitchCommand::Bridge { a, b } => {
                let (ha, hb) = (home(a), home(b));
                if let (Some(x), Some(y)) = (ha, hb)
                    && x != y
                {
                    warn!(%a, %b, "bridging legs of two different nodes; this will fail");
                }
                ha.or(hb).or_else(|| Some(self.fallback_node()))
            }
            SwitchCommand::Answer { leg }
            | SwitchCommand::Music { leg, .. }
            | SwitchCommand::Announce { leg, .. }
            | SwitchCommand::Hangup { leg, .. }
            | SwitchCommand::Transfer { leg, .. }
            | SwitchCommand::PlayThenHangup { leg, .. } => {
                home(leg).or_else(|| Some(self.fallback_node()))
            }
        }
    }

    /// The node the call `leg` is dialled for lives on: its caller leg's, its first leg's, or
    /// that of another leg dialled for it (a callback rings the agent, then the customer).
    fn call_node(&self, leg: LegId) -> Option<usize> {
        let call = self
            .engine
            .call_by_leg(leg)
            .and_then(|c| self.engine.call_info(c))?;
        let origin = call.origin_leg;
        self.homes
            .get(call.leg)
            .or_else(|| self.homes.get(origin))
            .or_else(|| {
                self.originated
                    .iter()
                    .filter(|(l, o)| **l != leg && o.call_leg.is_some_and(|c| c.0 == origin))
                    .find_map(|(l, _)| self.homes.get(*l))
            })
    }

    fn least_loaded(&mut self) -> Option<usize> {
        let up: Vec<bool> = self.nodes.iter().map(|n| n.connected).collect();
        nodes::least_loaded(&up, self.homes.counts(), &mut self.next_node)
    }

    /// Where a command for a leg of unknown home goes (a kill of a leg already forgotten):
    /// the first connected node, else the first node.
    fn fallback_node(&self) -> usize {
        self.nodes.iter().position(|n| n.connected).unwrap_or(0)
    }

    fn set_home(&mut self, leg: LegId, node: usize) {
        if self.homes.insert(leg, node) {
            self.publish_legs(node);
        } else {
            debug!(%leg, "leg map full; its commands go to the first connected node");
        }
    }

    fn forget_home(&mut self, leg: LegId) {
        if let Some(n) = self.homes.remove(leg) {
            self.publish_legs(n);
        }
    }

    fn publish_legs(&self, node: usize) {
        if let Some(c) = self.counters.nodes.get(node) {
            c.legs
                .store(self.homes.count(node) as u64, Ordering::Relaxed);
        }
    }

    fn commands_in_flight(&self) -> usize {
        self.inflight_commands + self.unwaited.len()
    }

    /// Enqueues the requests on `node`'s client, in order, now; their answers are waited for
    /// by a task spawned at the end of this loop turn.
    fn send_requests(
        &mut self,
        node: usize,
        requests: Vec<EslRequest>,
        tracking: Tracking,
        kill: Option<(&'static str, u32)>,
    ) {
        let started: Vec<Started> = requests.into_iter().map(|r| self.start(node, r)).collect();
        self.unwaited.push(Waiting {
            node,
            tracking,
            kill,
            started,
        });
    }

    /// Spawns the waits for this turn's commands: the `api` ones together per node (a node
    /// answers its connection's `api`s in order), each originate on its own.
    fn spawn_waits(&mut self) {
        if self.unwaited.is_empty() {
            return;
        }
        let (jobs, apis): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut self.unwaited)
            .into_iter()
            .partition(|w| matches!(w.tracking, Tracking::Originate(_)));
        if !apis.is_empty() {
            let mut per_node: Vec<Vec<Waiting>> = Vec::new();
            for w in apis {
                match per_node.iter_mut().find(|g| g[0].node == w.node) {
                    Some(g) => g.push(w),
                    None => per_node.push(vec![w]),
                }
            }
            for group in per_node {
                self.spawn_wait(group);
            }
        }
        for job in jobs {
            self.spawn_wait(vec![job]);
        }
    }

    fn spawn_wait(&mut self, waiting: Vec<Waiting>) {
        let n = waiting.len();
        let id = self.inflight.spawn(wait_all(waiting)).id();
        self.inflight_commands += n;
        self.inflight_sizes.insert(id, n);
    }

    /// A wait task ended (answered, or cancelled at shutdown): its commands are no longer
    /// in flight.
    fn wait_ended(&mut self, id: tokio::task::Id) {
        let n = self.inflight_sizes.remove(&id).unwrap_or(0);
        self.inflight_commands = self.inflight_commands.saturating_sub(n);
    }

    /// Creates the request's future and polls it once, so that it takes its place in the
    /// node's client queue now, in the loop's order. `unconstrained` keeps tokio's cooperative
    /// budget from turning that first poll into a no-op. The no-op waker is replaced by the
    /// task's own at the task's first poll. A node never connected fails the request at once.
    fn start(&self, node: usize, req: EslRequest) -> Started {
        let Some(client) = self.nodes.get(node).and_then(|n| n.client.clone()) else {
            return Started::Ready(Err(EslError::ConnectionClosed));
        };
        let fut: PendingReply = match req {
            EslRequest::Api(line) => Box::pin(tokio::task::unconstrained(async move {
                client.api(&line).await.map(|b| Answer::Api(b.to_vec()))
            })),
            EslRequest::BgApi(line) => Box::pin(tokio::task::unconstrained(async move {
                client.bgapi(&line).await.map(Answer::Job)
            })),
        };
        first_poll(fut)
    }

    fn is_caller_side(&self, leg: LegId) -> bool {
        self.callers.contains(&leg) || self.originated.get(&leg).is_some_and(|o| o.customer)
    }

    // ---- answers ----------------------------------------------------------------------------

    fn on_joined(&mut self, joined: Result<Done, tokio::task::JoinError>) {
        let done = match joined {
            Ok(d) => d,
            Err(e) => {
                // Our tasks do not panic; a cancelled one only happens at shutdown.
                error!(error = %e, "driver task ended abnormally");
                return;
            }
        };
        match done {
            Done::Commands(done) => {
                for d in done {
                    self.on_command_done(d.node, d.tracking, d.kill, d.replies);
                }
            }
            Done::ResyncQuery { node, epoch, reply } => self.on_resync_answer(node, epoch, reply),
            Done::ResyncRetry { node, epoch } => {
                let again = self.nodes[node]
                    .resync
                    .as_ref()
                    .filter(|r| r.epoch == epoch)
                    .map(|r| r.restarted);
                if let (Some(restarted), true) = (again, self.nodes[node].connected) {
                    self.start_resync(node, restarted);
                }
            }
            Done::KillRetry {
                leg,
                cause,
                attempt,
            } => {
                let still = self.originated.get(&leg).is_some_and(|o| !o.job_done);
                if still {
                    let node = self.homes.get(leg).unwrap_or_else(|| self.fallback_node());
                    let req = EslRequest::Api(format!("uuid_kill {leg} {cause}"));
                    self.send_requests(
                        node,
                        vec![req],
                        Tracking::Kill(leg),
                        Some((cause, attempt)),
                    );
                }
            }
            Done::OrphanCheck { leg, node, epoch } => self.on_orphan_check(leg, node, epoch),
            Done::Sweep => {
                self.sweep();
                self.schedule_sweep();
            }
            Done::NodeUp { node, result } => self.on_node_up(node, result),
            Done::Playback(d) => self.on_playback_done(d),
            Done::OrphanAnswer { leg, reply } => match reply {
                Ok(Answer::Api(body)) if body.trim_ascii() == b"false" => {
                    if self.callers.remove(&leg) {
                        self.forget_home(leg);
                        bump(&self.counters.legs_lost);
                        info!(%leg, "caller leg vanished with its socket");
                        self.followups.push_back(SwitchEvent::LegHungUp {
                            leg,
                            cause: HangupCause::Lost,
                        });
                    }
                }
                Ok(_) => debug!(%leg, "caller leg lives on without its socket"),
                Err(e) => {
                    debug!(%leg, error = %e, "uuid_exists failed; the next resync decides");
                }
            },
            Done::Nothing => {}
        }
    }

    fn on_command_done(
        &mut self,
        node: usize,
        tracking: Tracking,
        kill: Option<(&'static str, u32)>,
        replies: Vec<Reply>,
    ) {
        match tracking {
            Tracking::Originate(leg) => {
                for r in replies {
                    self.on_originate_reply(leg, r);
                }
            }
            Tracking::Kill(leg) => {
                let (cause, attempt) = kill.unwrap_or(("NORMAL_CLEARING", 1));
                for r in replies {
                    match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"-ERR") => {
                            // "No such channel": gone already, or not created yet.
                            let pending = self.originated.get(&leg).is_some_and(|o| !o.job_done);
                            if !pending && self.originated.remove(&leg).is_some() {
                                // Its hangup was missed (or it never existed): stop tracking.
                                self.forget_home(leg);
                            }
                            if pending && attempt <= self.cfg.kill_retries {
                                let delay = self.cfg.kill_retry;
                                self.chores.spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    Done::KillRetry {
                                        leg,
                                        cause,
                                        attempt: attempt.saturating_add(1),
                                    }
                                });
                            }
                        }
                        Ok(_) => {}
                        Err(EslError::ConnectionClosed) => {
                            let node = self.homes.get(leg).unwrap_or(node);
                            let kills = &mut self.nodes[node].failed_kills;
                            if kills.len() < MAX_FAILED_KILLS {
                                kills.insert(leg, cause);
                            }
                        }
                        Err(e) => {
                            bump(&self.counters.commands_failed);
                            warn!(%leg, error = %e, "uuid_kill failed");
                        }
                    }
                }
            }
            Tracking::Bridge(a, b) => {
                // The last answer is `uuid_bridge`'s (the variables before it do not decide).
                if let Some(r) = replies.into_iter().last() {
                    let refused = match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"-ERR") => {
                            Some(String::from_utf8_lossy(&body).trim_end().to_owned())
                        }
                        Ok(_) => None,
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(why) = refused {
                        bump(&self.counters.commands_failed);
                        bump(&self.counters.bridges_failed);
                        warn!(%a, %b, call = ?self.engine.call_by_leg(a).or_else(|| self.engine.call_by_leg(b)), reply = %why, "uuid_bridge refused");
                        self.followups.push_back(SwitchEvent::BridgeFailed { a, b });
                    }
                }
            }
            Tracking::Sweep(leg) => {
                for r in replies {
                    match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"+OK") => {
                            bump(&self.counters.orphans_killed);
                            warn!(%leg, "orphan leg killed: originated by switchyard, no longer used by any call");
                        }
                        Ok(Answer::Api(_)) => {
                            // No such channel: its hangup was missed; stop tracking it.
                            if self.originated.remove(&leg).is_some() {
                                self.forget_home(leg);
                            }
                        }
                        Ok(Answer::Job(_)) => {}
                        Err(e) => debug!(%leg, error = %e, "sweep kill not answered"),
                    }
                }
            }
            Tracking::Other => {
                for r in replies {
                    match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"-ERR") => {
                            bump(&self.counters.commands_failed);
                            // Races with hangups make these routine (a broadcast to a caller
                            // who just left).
                            debug!(reply = %String::from_utf8_lossy(&body).trim_end(), "switch refused a command");
                        }
                        Ok(_) => {}
                        Err(e) => {
                            bump(&self.counters.commands_failed);
                            debug!(error = %e, "switch command failed");
                        }
                    }
                }
            }
        }
    }

    fn on_originate_reply(&mut self, leg: LegId, reply: Reply) {
        match reply {
            Ok(Answer::Job(job)) if job.is_ok() => {
                let Some(o) = self.originated.get_mut(&leg) else {
                    return;
                };
                o.job_done = true;
                o.handed_over = true;
                if !o.answered {
                    o.answered = true;
                    self.followups.push_back(SwitchEvent::LegAnswered { leg });
                }
                let kill = o.kill;
                self.release_bridges();
                if let Some(cause) = kill {
                    // It answered after the core let it go.
                    let node = self.homes.get(leg).unwrap_or_else(|| self.fallback_node());
                    let req = EslRequest::Api(format!("uuid_kill {leg} {cause}"));
                    self.send_requests(
                        node,
                        vec![req],
                        Tracking::Kill(leg),
                        Some((cause, u32::MAX)),
                    );
                }
            }
            Ok(Answer::Job(job)) => {
                let body = job.body_str();
                let cause_name = body.split_ascii_whitespace().nth(1).unwrap_or("");
                let cause = if cause_name.is_empty() {
                    HangupCause::Failed
                } else {
                    HangupCause::from_freeswitch(cause_name)
                };
                let Some(o) = self.originated.get_mut(&leg) else {
                    return;
                };
                o.job_done = true;
                // An originate that fails after its leg answered (FreeSWITCH's
                // ORIGINATOR_CANCEL when a bridge raced it) leaves the leg up: kill it and
                // keep tracking it until its hangup.
                let may_be_up = o.answered || cause_name == "ORIGINATOR_CANCEL";
                let call_leg = o.call_leg.map(|c| c.0);
                for (a, b) in self.handover.drop_leg(leg) {
                    bump(&self.counters.bridges_failed);
                    warn!(%a, %b, %leg, reply = %body.trim_end(), "bridge dropped: its leg's originate failed");
                    self.followups.push_back(SwitchEvent::BridgeFailed { a, b });
                }
                if may_be_up {
                    bump(&self.counters.originates_failed_after_answer);
                    warn!(%leg, call = ?call_leg, reply = %body.trim_end(), "originate failed after its leg answered; killing the leg");
                    let kill = "NORMAL_CLEARING";
                    if let Some(o) = self.originated.get_mut(&leg) {
                        o.kill = Some(kill);
                    }
                    let node = self.homes.get(leg).unwrap_or_else(|| self.fallback_node());
                    let req = EslRequest::Api(format!("uuid_kill {leg} {kill}"));
                    self.send_requests(
                        node,
                        vec![req],
                        Tracking::Kill(leg),
                        Some((kill, u32::MAX)),
                    );
                } else {
                    self.originated.remove(&leg);
                    self.forget_home(leg);
                }
                self.followups
                    .push_back(SwitchEvent::LegHungUp { leg, cause });
            }
            Ok(Answer::Api(_)) => {}
            Err(EslError::ConnectionClosed | EslError::Shutdown) => {
                // It may have run: only the switch knows. The resync after the reconnect asks.
                if let Some(o) = self.originated.get_mut(&leg) {
                    o.job_done = true;
                }
            }
            Err(e) => {
                bump(&self.counters.commands_failed);
                warn!(%leg, error = %e, "originate failed");
                if matches!(e, EslError::Timeout { .. }) {
                    // The job's answer is lost, the leg may exist: make sure it does not.
                    let node = self.homes.get(leg).unwrap_or_else(|| self.fallback_node());
                    let req = EslRequest::Api(format!("uuid_kill {leg} NORMAL_CLEARING"));
                    self.send_requests(node, vec![req], Tracking::Other, None);
                }
                if self.originated.remove(&leg).is_some() {
                    self.forget_home(leg);
                    self.followups.push_back(SwitchEvent::LegHungUp {
                        leg,
                        cause: HangupCause::Failed,
                    });
                }
            }
        }
    }

    // ---- handover and orphans -----------------------------------------------------------------

    /// A leg this driver originated whose originate still owns it (see `handover`).
    fn owned_by_originate(&self, leg: LegId) -> bool {
        self.originated.get(&leg).is_some_and(|o| !o.handed_over)
    }

    /// Sends the held bridges whose legs are all handed over now.
    fn release_bridges(&mut self) {
        let ready = {
            let originated = &self.originated;
            self.handover
                .release(|l| originated.get(&l).is_some_and(|o| !o.handed_over))
        };
        for (a, b) in ready {
            self.switch(SwitchCommand::Bridge { a, b });
        }
    }

    fn schedule_sweep(&mut self) {
        let every = self.cfg.sweep_interval;
        if every.is_zero() {
            return;
        }
        self.chores.spawn(async move {
            tokio::time::sleep(every).await;
            Done::Sweep
        });
    }

    /// Kills legs this driver originated that the core has had no use for at two sweeps in a
    /// row: a kill that was lost, a leg left up by a failed originate whose kill found it
    /// later, a leg whose hangup event was missed. Their replies count the orphans.
    fn sweep(&mut self) {
        let engine = &self.engine;
        let mut orphans = Vec::new();
        for (leg, o) in self.originated.iter_mut() {
            if o.exempt || !o.job_done || engine.owns_leg(*leg) {
                o.unowned_sweeps = 0;
                continue;
            }
            o.unowned_sweeps = o.unowned_sweeps.saturating_add(1);
            if o.unowned_sweeps >= 2 {
                orphans.push(*leg);
            }
        }
        for leg in orphans {
            let node = self.homes.get(leg).unwrap_or_else(|| self.fallback_node());
            let req = EslRequest::Api(format!("uuid_kill {leg} NORMAL_CLEARING"));
            self.send_requests(node, vec![req], Tracking::Sweep(leg), None);
        }
    }

    // ---- the inbound connection -------------------------------------------------------------

    /// The call a leg of ours belongs to: a caller's own leg, or the call an originated leg
    /// was dialled for.
    fn call_leg_of(&self, leg: LegId) -> Option<(LegId, QueueId)> {
        if let Some(q) = self.caller_queues.get(&leg) {
            // The queue the caller is in now, if the call still exists; else where it arrived.
            let queue = self
                .engine
                .call_by_leg(leg)
                .and_then(|c| self.engine.call_info(c))
                .map_or(*q, |c| c.queue);
            return Some((leg, queue));
        }
        self.originated.get(&leg).and_then(|o| o.call_leg)
    }

    fn on_client_event(&mut self, node: usize, ev: Option<ClientEvent>) {
        let Some(ev) = ev else {
            let n = &mut self.nodes[node];
            let why = n.events.as_mut().and_then(EventStream::take_error);
            n.events = None;
            n.connected = false;
            self.counters.nodes[node]
                .connected
                .store(false, Ordering::Relaxed);
            error!(node = %self.nodes[node].name, error = ?why, "the Event Socket client stopped for good; no more events from this node");
            return;
        };
        match ev {
            ClientEvent::Event(e) => {
                let Some(leg) = e.unique_id().and_then(|u| LegId::parse(&u)) else {
                    return;
                };
                match e.name().as_deref() {
                    Some("CHANNEL_ANSWER") => {
                        if let Some(o) = self.originated.get_mut(&leg)
                            && !o.answered
                        {
                            o.answered = true;
                            self.feed_switch(SwitchEvent::LegAnswered { leg });
                        }
                    }
                    Some("CHANNEL_PARK") => {
                        // The originate's `&park()` runs once the originate let go.
                        if let Some(o) = self.originated.get_mut(&leg)
                            && !o.handed_over
                        {
                            o.handed_over = true;
                            self.release_bridges();
                        }
                    }
                    Some("CHANNEL_BRIDGE") => {
                        let other = e
                            .header("Other-Leg-Unique-ID")
                            .or_else(|| e.header("Bridge-B-Unique-ID"))
                            .and_then(|u| LegId::parse(&u));
                        let ours =
                            |l: &LegId| self.callers.contains(l) || self.originated.contains_key(l);
                        if let Some(other) = other
                            && (ours(&leg) || ours(&other))
                        {
                            self.feed_switch(SwitchEvent::Bridged { a: leg, b: other });
                        }
                    }
                    Some("CHANNEL_EXECUTE_COMPLETE")
                        if e.header("Application").as_deref() == Some("amd") =>
                    {
                        let verdict = e
                            .variable("amd_result")
                            .map_or(AmdResult::Unsure, |v| AmdResult::from_freeswitch(&v));
                        self.machine_detection(leg, verdict);
                    }
                    Some("CHANNEL_EXECUTE_COMPLETE") => self.on_executed(leg, &e),
                    Some("CUSTOM")
                        if e.header("Event-Subclass").as_deref() == Some("avmd::beep") =>
                    {
                        self.machine_detection(leg, AmdResult::Machine);
                    }
                    Some("CHANNEL_HANGUP_COMPLETE") => {
                        self.prompt_leg_gone(leg);
                        for (a, b) in self.handover.drop_leg(leg) {
                            self.followups.push_back(SwitchEvent::BridgeFailed { a, b });
                        }
                        // The leg's CDR, for legs of ours, before the core forgets whose it was.
                        let call_leg = self.call_leg_of(leg);
                        self.caller_queues.remove(&leg);
                        self.forget_home(leg);
                        let ours =
                            self.originated.remove(&leg).is_some() | self.callers.remove(&leg);
                        if ours || call_leg.is_some() {
                            self.records.push(Record::Cdr(cdr_from(&e, leg, call_leg)));
                        }
                        if ours {
                            let cause = e
                                .hangup_cause()
                                .map_or(HangupCause::Normal, |c| HangupCause::from_freeswitch(&c));
                            self.feed_switch(SwitchEvent::LegHungUp { leg, cause });
                        }
                    }
                    _ => {}
                }
            }
            ClientEvent::Connected {
                core_uuid,
                switch_restarted,
            } => {
                let n = &mut self.nodes[node];
                n.connected = true;
                n.core_uuid = Some(core_uuid.clone());
                let c = &self.counters.nodes[node];
                c.connected.store(true, Ordering::Relaxed);
                c.set_core_uuid(&core_uuid);
                let name = n.name.clone();
                if n.seen_connect {
                    info!(node = %name, %core_uuid, switch_restarted, "reconnected to FreeSWITCH; resyncing this node");
                    self.start_resync(node, switch_restarted);
                } else {
                    n.seen_connect = true;
                    info!(node = %name, %core_uuid, "connected to FreeSWITCH");
                }
                // After the resync's question: every connection may be another machine (or
                // a reinstalled one), so its sounds are checked again.
                self.check_sounds(node);
            }
            ClientEvent::Disconnected { reason } => {
                self.nodes[node].connected = false;
                self.counters.nodes[node]
                    .connected
                    .store(false, Ordering::Relaxed);
                warn!(node = %self.nodes[node].name, error = %reason, "lost the Event Socket connection");
            }
            ClientEvent::Lagged { dropped } => {
                self.counters
                    .events_lagged
                    .fetch_add(dropped, Ordering::Relaxed);
                warn!(node = %self.nodes[node].name, dropped, "switch events were dropped; resyncing this node");
                if self.nodes[node].connected {
                    self.start_resync(node, false);
                }
            }
            _ => {}
        }
    }

    /// An answering-machine verdict: reported once, and only for campaign dials.
    fn machine_detection(&mut self, leg: LegId, result: AmdResult) {
        let Some(o) = self.originated.get_mut(&leg) else {
            return;
        };
        if !o.campaign || o.amd_reported {
            return;
        }
        o.amd_reported = true;
        bump(&self.counters.machine_detections);
        debug!(%leg, ?result, "answering-machine detection");
        if let Some(p) = &self.cfg.probe {
            p.machine_detection(leg, result, now());
        }
        self.feed_switch(SwitchEvent::MachineDetection { leg, result });
    }

    // ---- nodes ----------------------------------------------------------------------------------

    /// Tries a node that was down at start again after its current delay (doubling up to its
    /// backoff maximum). Once connected, its client reconnects by itself.
    fn reconnect_later(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let delay = n.retry;
        n.retry = (n.retry * 2).min(n.cfg.backoff.max.max(n.cfg.backoff.initial));
        let cfg = n.cfg.clone();
        self.chores.spawn(async move {
            tokio::time::sleep(delay).await;
            Done::NodeUp {
                node,
                result: Client::connect(cfg).await.map(|(c, e)| Fresh(c, e)),
            }
        });
    }

    fn on_node_up(&mut self, node: usize, result: Result<Fresh, EslError>) {
        match result {
            Ok(Fresh(client, events)) => {
                let n = &mut self.nodes[node];
                n.client = Some(client);
                n.events = Some(events);
                // The stream's own Connected (first in it) marks the node up and learns its
                // Core-UUID; it has no legs to resync.
                info!(node = %n.name, "FreeSWITCH node reachable");
            }
            Err(e) => {
                debug!(node = %self.nodes[node].name, error = %e, "FreeSWITCH node still unreachable");
                self.reconnect_later(node);
            }
        }
    }

    /// What `nodes::place_caller` needs of every node.
    fn node_views(&self) -> Vec<NodeView<'_>> {
        self.nodes
            .iter()
            .map(|n| NodeView {
                name: &n.name,
                core_uuid: n.core_uuid.as_deref(),
                connected: n.connected,
                ip: n.ip,
            })
            .collect()
    }

    // ---- recovery -----------------------------------------------------------------------------

    fn start_resync(&mut self, node: usize, restarted: bool) {
        let n = &mut self.nodes[node];
        n.resync_epoch += 1;
        let restarted = restarted || n.resync.as_ref().is_some_and(|r| r.restarted);
        let epoch = n.resync_epoch;
        n.resync = Some(Resync {
            epoch,
            restarted,
            extra: HashSet::new(),
        });
        let started = self.start(node, EslRequest::Api("show channels as json".into()));
        self.chores.spawn(async move {
            Done::ResyncQuery {
                node,
                epoch,
                reply: started.finish().await,
            }
        });
    }

    /// Reconciles one node: its legs not listed (nor originated or arrived since the question)
    /// are gone. The core is told with a Resync that also lists every leg the driver believes
    /// alive on the other nodes, so that their calls are left alone (see the module doc).
    fn on_resync_answer(&mut self, node: usize, epoch: u64, reply: Reply) {
        if self.nodes[node]
            .resync
            .as_ref()
            .is_none_or(|r| r.epoch != epoch)
        {
            return; // A later question supersedes this one.
        }
        let parsed = match reply {
            Ok(Answer::Api(body)) => resync::live_legs(&body),
            Ok(Answer::Job(_)) => Err("a job answer to an api".into()),
            Err(EslError::ConnectionClosed | EslError::Shutdown) => {
                // The next Connected asks again.
                return;
            }
            Err(e) => Err(e.to_string()),
        };
        let mut live = match parsed {
            Ok(l) => l,
            Err(e) => {
                warn!(node = %self.nodes[node].name, error = %e, "resync answer unusable; asking again");
                self.chores.spawn(async move {
                    tokio::time::sleep(RESYNC_RETRY).await;
                    Done::ResyncRetry { node, epoch }
                });
                return;
            }
        };
        let Some(r) = self.nodes[node].resync.take() else {
            return;
        };
        live.extend(r.extra);
        // Originates not sent yet have no node: alive in intent wherever they will go.
        live.extend(self.backlog.iter().filter_map(originated_leg));
        live.sort_unstable();
        live.dedup();
        let alive = |l: &LegId| live.binary_search(l).is_ok();
        // This resync judges the legs of this node (and legs of no known node).
        let homes = &self.homes;
        let judged = |l: &LegId| homes.get(*l).is_none_or(|n| n == node);
        self.originated.retain(|l, _| !judged(l) || alive(l));
        self.callers.retain(|l| !judged(l) || alive(l));
        self.caller_queues.retain(|l, _| !judged(l) || alive(l));
        self.homes.prune(node, |l| alive(&l));
        self.publish_legs(node);
        let kills: Vec<(LegId, &'static str)> = self.nodes[node].failed_kills.drain().collect();
        if !r.restarted {
            for (leg, cause) in kills.into_iter().filter(|(l, _)| alive(l)) {
                let req = EslRequest::Api(format!("uuid_kill {leg} {cause}"));
                self.send_requests(
                    node,
                    vec![req],
                    Tracking::Kill(leg),
                    Some((cause, u32::MAX)),
                );
            }
        }
        let own = live.len();
        live.extend(self.homes.elsewhere(node));
        live.sort_unstable();
        live.dedup();
        bump(&self.counters.resyncs);
        bump(&self.counters.nodes[node].resyncs);
        info!(
            node = %self.nodes[node].name,
            live = own,
            elsewhere = live.len() - own,
            restarted = r.restarted,
            "resync fed to the core"
        );
        self.followups.push_back(SwitchEvent::Resync {
            live,
            restarted: r.restarted,
        });
    }

    fn on_orphan_check(&mut self, leg: LegId, node: usize, epoch: u64) {
        let n = &self.nodes[node];
        if !self.callers.contains(&leg) || epoch != n.resync_epoch {
            // Reported meanwhile, or a resync (done or under way) covers it.
            return;
        }
        if !n.connected {
            let grace = self.cfg.orphan_grace;
            self.chores.spawn(async move {
                tokio::time::sleep(grace).await;
                Done::OrphanCheck { leg, node, epoch }
            });
            return;
        }
        let started = self.start(node, EslRequest::Api(format!("uuid_exists {leg}")));
        self.chores.spawn(async move {
            Done::OrphanAnswer {
                leg,
                reply: started.finish().await,
            }
        });
    }

    // ---- callers ------------------------------------------------------------------------------

    fn on_session(&mut self, msg: SessionMsg) {
        match msg {
            SessionMsg::Arrived {
                leg,
                route,
                caller,
                origin,
                handle,
            } => {
                bump(&self.counters.calls_arrived);
                let Some(node) = nodes::place_caller(&origin, &self.node_views()) else {
                    bump(&self.counters.calls_without_node);
                    warn!(%leg, ?origin, "no configured FreeSWITCH node matches this caller; hanging up");
                    self.chores.spawn(async move {
                        let _ = handle.hangup("NORMAL_TEMPORARY_FAILURE").await;
                        Done::Nothing
                    });
                    return;
                };
                let Some(queue) = self.route(&route) else {
                    bump(&self.counters.calls_unrouted);
                    warn!(%leg, ?route, "no queue for this caller; hanging up");
                    let cause = self.cfg.unrouted_cause.clone();
                    self.chores.spawn(async move {
                        let _ = handle.hangup(&cause).await;
                        Done::Nothing
                    });
                    return;
                };
                drop(handle);
                self.callers.insert(leg);
                self.set_home(leg, node);
                // Bounded: entries leave at the leg's CDR or at a resync.
                if self.caller_queues.len() < 1_000_000 {
                    self.caller_queues.insert(leg, queue);
                }
                if let Some(r) = &mut self.nodes[node].resync {
                    r.extra.insert(leg);
                }
                let at = now();
                if let Some(p) = &self.cfg.probe {
                    p.call_arrived(leg, at);
                }
                if let Err(e) = self.feed(Input::Switch(
                    at,
                    SwitchEvent::CallArrived { leg, queue, caller },
                )) {
                    warn!(%leg, error = %e, "the core refused an arrival");
                }
            }
            SessionMsg::Dtmf { leg, digit } => {
                if self.callers.contains(&leg) {
                    self.feed_switch(SwitchEvent::Dtmf { leg, digit });
                }
            }
            SessionMsg::HungUp { leg, cause } => {
                self.prompt_leg_gone(leg);
                if self.callers.remove(&leg) {
                    self.forget_home(leg);
                    self.feed_switch(SwitchEvent::LegHungUp { leg, cause });
                }
            }
            SessionMsg::Vanished { leg } => {
                if self.callers.contains(&leg) {
                    let node = self.homes.get(leg).unwrap_or_else(|| self.fallback_node());
                    let (grace, epoch) = (self.cfg.orphan_grace, self.nodes[node].resync_epoch);
                    self.chores.spawn(async move {
                        tokio::time::sleep(grace).await;
                        Done::OrphanCheck { leg, node, epoch }
                    });
                }
            }
        }
    }

    /// The queue for a caller: its `switchyard_queue` variable decides when set (an unknown
    /// name is a configuration error, not a reason to guess), else its dialled number, else
    /// the default queue.
    fn route(&self, keys: &RouteKeys) -> Option<QueueId> {
        let lookup = |k: &str| {
            self.cfg
                .routes
                .get(k)
                .or_else(|| {
                    self.cfg
                        .learn_queue_names
                        .then(|| self.learned.get(k))
                        .flatten()
                })
                .copied()
        };
        if let Some(name) = &keys.queue_var {
            return lookup(name);
        }
        keys.destination
            .as_deref()
            .and_then(lookup)
            .or(self.cfg.default_queue)
    }

    // ---- the API ------------------------------------------------------------------------------

    fn on_api(&mut self, req: ApiRequest) {
        match req {
            ApiRequest::Command(cmd, reply) => {
                let learn = match &cmd {
                    Command::UpsertQueue(q) => Some((Some(q.name.clone()), q.id)),
                    Command::RemoveQueue(id) => Some((None, *id)),
                    _ => None,
                };
                let result = self.feed(Input::Api(now(), cmd));
                if result.is_ok()
                    && let Some((name, id)) = learn
                {
                    self.learned.retain(|_, q| *q != id);
                    if name.is_some() {
                        self.check_queue_sounds(id);
                    }
                    if let Some(name) = name.filter(|n| !n.is_empty()) {
                        self.learned.insert(name, id);
                    }
                }
                let _ = reply.send(result);
            }
            ApiRequest::Query(read) => read(&self.engine),
            ApiRequest::Routes(routes) => self.cfg.routes = routes,
            ApiRequest::Inject(cmd) => {
                // Tooling's legs are not the core's: the sweep leaves them alone. A command the
                // core asked for before the driver ran (boot) is the core's like any other.
                let leg = originated_leg(&cmd).filter(|l| !self.engine.owns_leg(*l));
                self.switch(cmd);
                if let Some(o) = leg.and_then(|l| self.originated.get_mut(&l)) {
                    o.exempt = true;
                }
                self.counters
                    .backlog
                    .store(self.backlog.len() as u64, Ordering::Relaxed);
            }
        }
    }

    // ---- shutdown -------------------------------------------------------------------------------

    async fn shutdown(mut self) -> ShutdownReport {
        info!("driver shutting down");
        // Stop accepting callers and requests; queued requests are answered "stopped".
        self.server = None;
        self.api_rx.close();
        while let Ok(req) = self.api_rx.try_recv() {
            drop(req);
        }
        let deadline = tokio::time::Instant::now() + self.cfg.shutdown_grace;
        // Commands the core already decided are sent and answered if the switch allows.
        self.feed_followups();
        let unsent = self.backlog.len();
        self.backlog.clear();
        // Their answers no longer matter to a stopped core; only their delivery does.
        self.spawn_waits();
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(done) = self.inflight.join_next_with_id().await {
                match done {
                    Ok((id, _)) => self.wait_ended(id),
                    Err(e) => self.wait_ended(e.id()),
                }
            }
        })
        .await;
        let abandoned = self.inflight_commands;
        self.inflight.abort_all();
        self.chores.abort_all();
        // Records: what is parked goes to the writer, then the writer empties its queue.
        let _ = tokio::time::timeout_at(deadline, self.records.flush()).await;
        // The last sender goes: the writer ends once its queue is empty.
        drop(self.records);
        let records_flushed = match self.writer.take() {
            Some(w) => matches!(tokio::time::timeout_at(deadline, w).await, Ok(Ok(()))),
            None => true,
        };
        self.session_tasks.abort_all();
        for n in &self.nodes {
            if let Some(c) = &n.client {
                let _ = tokio::time::timeout_at(deadline, c.shutdown()).await;
            }
        }
        info!(abandoned, unsent, records_flushed, "driver stopped");
        ShutdownReport {
            engine: self.engine,
            commands_abandoned: abandoned,
            commands_unsent: unsent,
            records_flushed,
            stats: self.counters.snapshot(),
        }
    }
}

/// Waits for the answers of some commands, in order.
async fn wait_all(waiting: Vec<Waiting>) -> Done {
    let mut done = Vec::with_capacity(waiting.len());
    for w in waiting {
        let mut replies = Vec::with_capacity(w.started.len());
        for s in w.started {
            replies.push(s.finish().await);
        }
        done.push(CommandDone {
            node: w.node,
            tracking: w.tracking,
            kill: w.kill,
            replies,
        });
    }
    Done::Commands(done)
}

/// Polls a request future once with a waker that does nothing (see [`Loop::start`]).
fn first_poll(mut fut: PendingReply) -> Started {
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => Started::Ready(r),
        Poll::Pending => Started::Waiting(fut),
    }
}

/// The next caller socket, or never when the server is gone.
async fn accept(
    server: &mut Option<OutboundServer>,
) -> Option<switchyard_esl::server::OutboundSession> {
    match server {
        Some(s) => s.accept().await,
        None => std::future::pending().await,
    }
}

/// A slot in the record queue, or never when nothing is parked.
async fn reserve(
    tx: Option<mpsc::Sender<crate::io::Record>>,
) -> Result<mpsc::OwnedPermit<crate::io::Record>, mpsc::error::SendError<()>> {
    match tx {
        Some(tx) => tx.reserve_owned().await,
        None => std::future::pending().await,
    }
}

/// The leg a command creates, if it creates one.
fn originated_leg(cmd: &SwitchCommand) -> Option<LegId> {
    match cmd {
        SwitchCommand::Originate { leg, .. } | SwitchCommand::Eavesdrop { leg, .. } => Some(*leg),
        _ => None,
    }
}

/// Microseconds since the epoch (FreeSWITCH's `*-Time` headers) to milliseconds; 0 = unset.
fn usec_header(e: &switchyard_esl::Event, name: &str) -> Option<u64> {
    e.header(name)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .map(|v| v / 1000)
}

/// A CDR from CHANNEL_HANGUP_COMPLETE (header names as in the FreeSWITCH 1.10 captures).
fn cdr_from(
    e: &switchyard_esl::Event,
    leg: LegId,
    call: Option<(LegId, QueueId)>,
) -> crate::io::CdrRecord {
    let text = |v: Option<std::borrow::Cow<'_, str>>| v.map(|v| v.into_owned()).unwrap_or_default();
    let started = usec_header(e, "Caller-Channel-Created-Time").unwrap_or(0);
    let ended = usec_header(e, "Caller-Channel-Hangup-Time").unwrap_or(started);
    crate::io::CdrRecord {
        leg,
        call_leg: call.map(|c| c.0),
        queue: call.map(|c| c.1),
        direction: text(e.header("Call-Direction")),
        caller_number: text(e.caller("Caller-ID-Number")),
        destination: text(e.caller("Destination-Number")),
        hangup_cause: text(e.hangup_cause()),
        started_unix_ms: started,
        answered_unix_ms: usec_header(e, "Caller-Channel-Answered-Time"),
        ended_unix_ms: ended,
        billsec_ms: e
            .variable("billmsec")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    }
}
