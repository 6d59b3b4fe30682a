//! The engine against FreeSWITCH over the Event Socket (feature `driver`): a sans-IO core
//! ([`DriverCore`], module `core`) that makes every decision, inside a thin tokio loop
//! (module `shell`) that owns the sockets, tasks and clock. Nothing the loop does waits on
//! FreeSWITCH or on the store:
//!
//! ```text
//!   dialplan `socket` ──▶ OutboundServer ──▶ session task per caller ──┐ arrivals, DTMF, hangups
//!   inbound ESL client per node ── events / Connected / Disconnected / Lagged ──┤
//!   DriverHandle ── mpsc(api_queue): commands (oneshot reply) and queries ───────┤
//!   answers of earlier requests (tasks) · sleep_until(core.next_deadline()) ─────┤
//!                                                                                ▼
//!                 DriverCore: engine + pipeline + playback + translate + recovery
//!     CoreOutput::Send   ──▶ requests enqueued on the node's client in output order; their
//!                            answers awaited in tasks and fed back as `answered(ticket, ..)`
//!                            (max_commands_in_flight, then a bounded backlog, then dropped
//!                            and counted)
//!     CoreOutput::Record ──▶ RecordPipe ──▶ writer task ──▶ RecordSink (batches)
//!                            settled count (watch) ──▶ core.records_kept: held originates go
//!     CoreOutput::Live   ──▶ broadcast(live_capacity)
//!     CoreOutput::Connect ─▶ a connection attempt for a node never reached
//! ```
//!
//! The same core runs without tokio against the fake switch's core in virtual time (the root
//! package's `tests/driver_pair.rs`), which is where its timing-dependent cases are tested.
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
//! Where each concern lives:
//! - **order of requests** (one global order per connection, no request waiting for
//!   another's answer): module `shell`;
//! - **bridges that wait for the handover**, kills that overtake their originate, the
//!   in-flight bound: `core::pipeline` (and `handover`);
//! - **events to the engine**, CDRs, answering-machine verdicts: `core::translate`;
//! - **recovery**: reconnects, resyncs (`show channels as json`), orphan checks and the two
//!   sweeps (legs nobody uses; stray channels of ours a restart forgot): `core::recovery`;
//! - **prompts and sounds**: one prompt of ours at a time per caller, a missing sound played
//!   as a tone: `core::playback` (and `prompts`, `sounds`);
//! - **records** never block the loop: [`RecordSink`] and the module `records`.
//!
//! **Several FreeSWITCH nodes.** The driver holds one inbound connection per node
//! ([`DriverConfig::add_node`]) and one outbound-socket listener that every node's dialplan
//! points at. Each leg has a home node, and every command for a leg goes over its home's
//! connection (so the order `shell` keeps holds per node, which is per leg):
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
//! channels`). The core's [`SwitchEvent::Resync`](crate::io::SwitchEvent::Resync) means "every leg not listed is gone", so a
//! resync of node A lists A's live legs *plus every leg the driver believes alive on the other
//! nodes*: A's restart closes A's calls and nobody else's, without the core knowing about
//! nodes. [`DriverHandle::connected`] is true while at least one node is connected (the engine
//! can still take calls); [`DriverHandle::nodes`] shows each node.
//!
//! **Answering-machine detection.** For legs originated as [`LegKind::Campaign`](crate::io::LegKind::Campaign) only, the
//! driver reports [`SwitchEvent::MachineDetection`](crate::io::SwitchEvent::MachineDetection) once per leg, from either
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
pub mod core;
mod error;
mod handover;
pub mod media;
mod media_service;
pub mod modules;
pub use media_service::check_file;
mod nodes;
mod prompts;
mod records;
mod resync;
mod session;
mod shell;
mod sounds;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchyard_esl::EslError;
use switchyard_esl::client::{Client, EventStream};
use switchyard_esl::server::OutboundServer;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{error, warn};

use crate::Engine;
use crate::error::EngineError;
use crate::ids::QueueId;
use crate::io::{Command, LiveEvent, SwitchCommand};

pub use self::core::{Admission, Answer, CoreOutput, DriverCore, InboundPlan, Reply, Ticket};
pub use commands::EslRequest;
pub use config::{
    ARRIVED_VARIABLE, DRIVER_EVENTS, DriverConfig, EndpointSetup, LEG_VARIABLE, NODE_VARIABLE,
    NodeConfig, OpenRecords, Probe, PromptTemplates, RecordingSetup, VoicemailSetup,
};
pub use error::DriverError;
pub use media::{MediaReport, MediaRequest, RECORDER_LEG};
pub use modules::{Feature, FeatureGap};
pub use nodes::NodeStatus;
pub use records::{NullSink, RecordSink};
pub use session::{Arrival, CallerInput, Origin, RouteKeys, SocketState, read_channel_data};

use nodes::NodeCounters;
use records::RecordPipe;
use shell::{Conn, Shell};
/// A read of the engine's state, run on the loop between inputs.
pub type Query = Box<dyn FnOnce(&Engine) + Send>;

enum ApiRequest {
    Command(Command, oneshot::Sender<Result<(), EngineError>>),
    /// A command whose records are to be filed before its caller is answered: the reply is
    /// how many records had been handed to the writer once its outputs were carried out.
    CommandFiled(Command, oneshot::Sender<Result<u64, EngineError>>),
    Query(Query),
    /// Replaces the number/name -> queue routes (a queue's numbers changed through the API).
    Routes(HashMap<String, QueueId>),
    Inbound(Option<Arc<InboundPlan>>),
    /// A switch command sent as if the core had emitted it (tests, operator tooling).
    Inject(SwitchCommand),
    /// Admit the callers held since start (`DriverConfig::hold_callers`), and all after them.
    AdmitCallers,
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
    /// Bridges FreeSWITCH made by itself as the agent's originate completed (an originate with
    /// `join`; see the module `commands`), with no `uuid_bridge` from switchyard.
    pub bridges_joined: u64,
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
    /// Recordings the core started capturing (live or on the switch).
    pub recordings_started: u64,
    /// Live recordings given up for the switch's `uuid_record` (recorder legs refused, not
    /// answered, or the endpoint full).
    pub recorder_fallbacks: u64,
    /// Recordings that ended with an error (no file, a damaged file, `uuid_record` refused).
    pub recordings_failed: u64,
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
    /// Of `records_dropped`, those the loop's end of the pipe dropped (they never reach the
    /// writer, so `settled` never counts them).
    records_unqueued: AtomicU64,
    resyncs: AtomicU64,
    events_lagged: AtomicU64,
    legs_lost: AtomicU64,
    calls_without_node: AtomicU64,
    machine_detections: AtomicU64,
    bridges_held: AtomicU64,
    bridges_joined: AtomicU64,
    bridges_failed: AtomicU64,
    originates_failed_after_answer: AtomicU64,
    orphans_killed: AtomicU64,
    sounds_missing: AtomicU64,
    prompts_queued: AtomicU64,
    prompts_overdue: AtomicU64,
    recordings_started: AtomicU64,
    recorder_fallbacks: AtomicU64,
    recordings_failed: AtomicU64,
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
            bridges_joined: g(&self.bridges_joined),
            bridges_failed: g(&self.bridges_failed),
            originates_failed_after_answer: g(&self.originates_failed_after_answer),
            orphans_killed: g(&self.orphans_killed),
            sounds_missing: g(&self.sounds_missing),
            prompts_queued: g(&self.prompts_queued),
            prompts_overdue: g(&self.prompts_overdue),
            recordings_started: g(&self.recordings_started),
            recorder_fallbacks: g(&self.recorder_fallbacks),
            recordings_failed: g(&self.recordings_failed),
        }
    }
}

/// The API side of a running driver. Cheap to clone.
#[derive(Clone)]
pub struct DriverHandle {
    api: mpsc::Sender<ApiRequest>,
    /// Records the writer settled (`records::writer`), for [`DriverHandle::command_filed`].
    settled: watch::Receiver<u64>,
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

    /// Runs a command and answers once the records it made are filed (the sink's `write`
    /// returned for them: stored, or journaled while the database is away), or `within` has
    /// passed (logged; the command has taken effect either way). For the API's changes whose
    /// answer promises that they are kept, so a `kill -9` just after cannot lose them: an
    /// agent's presence, a disposition.
    pub async fn command_filed(&self, cmd: Command, within: Duration) -> Result<(), DriverError> {
        let (tx, rx) = oneshot::channel();
        self.api
            .send(ApiRequest::CommandFiled(cmd, tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        let upto = rx
            .await
            .map_err(|_| DriverError::Stopped)?
            .map_err(DriverError::Engine)?;
        let mut settled = self.settled.clone();
        let unqueued = &self.counters.records_unqueued;
        let filed = settled.wait_for(|s| s + unqueued.load(Ordering::Relaxed) >= upto);
        match tokio::time::timeout(within, filed).await {
            Ok(Ok(_)) => Ok(()),
            // The writer is gone: the driver is stopping.
            Ok(Err(_)) => Err(DriverError::Stopped),
            Err(_) => {
                warn!(
                    ?within,
                    "a command's records were not filed in time; answered anyway"
                );
                Ok(())
            }
        }
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

    /// Replaces the number plan and flows new callers walk (`None`: callers go by number or
    /// `switchyard_queue` alone); callers already in a flow finish theirs.
    pub async fn set_inbound(&self, plan: Option<Arc<InboundPlan>>) -> Result<(), DriverError> {
        self.api
            .send(ApiRequest::Inbound(plan))
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

    /// Admits the callers held since start ([`DriverConfig::hold_callers`]) in their order of
    /// arrival, and every caller after them.
    pub async fn admit_callers(&self) -> Result<(), DriverError> {
        self.api
            .send(ApiRequest::AdmitCallers)
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
    /// node refuses the password or the switch's ACL refuses us (a configuration mistake that
    /// retrying cannot fix). A node that is merely unreachable starts disconnected and is
    /// retried in the background with its own backoff, even when it is the only one (a switch
    /// restarted together with switchyard may come up second): it gets no legs until it is up,
    /// and [`DriverHandle::connected`] says false while no node is.
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
        let mut conns = Vec::with_capacity(specs.len());
        let mut up = Vec::with_capacity(specs.len());
        for (spec, attempt) in specs.into_iter().zip(first) {
            let attempt = attempt.unwrap_or(Err(EslError::ConnectionClosed));
            let (client, events) = match attempt {
                Ok((c, e)) => (Some(c), Some(e)),
                Err(e @ (EslError::AuthFailed { .. } | EslError::AccessDenied { .. })) => {
                    return Err(DriverError::Esl(e));
                }
                Err(e) => {
                    warn!(node = %spec.name, addr = %spec.esl.addr, error = %e, "FreeSWITCH node unreachable; retrying in the background");
                    (None, None)
                }
            };
            up.push(client.is_some());
            conns.push(Conn {
                cfg: spec.esl,
                client,
                events,
            });
        }
        if !up.iter().any(|u| *u) {
            warn!("no FreeSWITCH node is reachable; taking no calls until one is");
        }
        let (api_tx, api_rx) = mpsc::channel(config.api_queue.max(1));
        let (live, _) = broadcast::channel(config.live_capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let (records_tx, records_rx) = mpsc::channel(config.record_queue.max(1));
        let (sessions_tx, sessions_rx) = mpsc::channel(config.session_queue.max(1));
        let (record_batch, record_overflow) = (config.record_batch, config.record_overflow);
        let shutdown_grace = config.shutdown_grace;
        let callers_admitted = !config.hold_callers;
        let mut config = config;
        let (media, sip_addr) = media_service::start(config.recording.endpoint.as_ref()).await?;
        match (sip_addr, &mut config.recording.recorder_dial) {
            (Some(addr), Some(dial)) => *dial = dial.replace("{addr}", &addr.to_string()),
            // Without an endpoint there is nobody to dial.
            (None, dial) => *dial = None,
            (Some(_), None) => {}
        }
        let core = DriverCore::new(config, engine, &up, shell::now())?;
        let counters = core.counters();
        let (settled_tx, settled) = watch::channel(0);
        let settled_seen = settled.clone();
        let writer = tokio::spawn(records::writer(
            records_rx,
            sink,
            record_batch,
            Arc::clone(&counters),
            settled_tx,
        ));
        let shell = Shell {
            core,
            conns,
            event_turn: 0,
            server: Some(server),
            sessions_tx,
            sessions_rx,
            callers_admitted,
            session_tasks: JoinSet::new(),
            api_rx,
            stop_rx,
            live: live.clone(),
            records: RecordPipe::new(records_tx, record_overflow, Arc::clone(&counters)),
            writer: Some(writer),
            settled,
            reported_kept: 0,
            shutdown_grace,
            waits: JoinSet::new(),
            unwaited: Vec::new(),
            connects: JoinSet::new(),
            refusals: JoinSet::new(),
            media,
        };
        let task = tokio::spawn(shell.run());
        Ok(Driver {
            handle: DriverHandle {
                api: api_tx,
                settled: settled_seen,
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
