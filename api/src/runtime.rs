//! The running engine: runs the routing core under the driver against FreeSWITCH, loads it
//! from the store through the driver (`boot`), writes its records back to the store in
//! batches, and files its live events under their tenants.
//!
//! ```text
//!  store ──boot──────┐
//!                     ▼
//!  HTTP handlers ── DriverHandle::command / query ──▶ Driver(Engine) ◀──▶ FreeSWITCH
//!                                                       │
//!                     StoreSink (batched, retried) ◀── Persist records ──▶ store
//!                     forwarder ◀── Notify events ──▶ live state, live feed (per tenant)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use switchyard_engine::dialer::AttemptStart;
use switchyard_engine::driver::{
    Driver, DriverConfig, DriverError, DriverHandle, OpenRecords, RecordSink,
};
use switchyard_engine::stats::{IntervalRecord, Scope};
use switchyard_engine::{
    AgentId, CallOpen, Engine, EngineConfig, LegId, LiveEvent, Presence, QueueId, Record,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use uuid::Uuid;

use crate::directory::Directory;
use crate::http::{LiveConfig, LiveHub, Metrics, SnapshotFn};
use crate::ids::IdCodec;
use crate::live_state::LiveState;
use crate::model::TenantId;
use crate::recording_objects::{Objects, ObjectsConfig};
use crate::spec::QueueSpec;
use crate::store::{
    CallRow, CdrRow, IntervalRow, IntervalScope, RecordingRow, Store, StoreError, TraceRow,
};

/// Where FreeSWITCH is (one node; see [`SwitchNode`] and [`Runtime::start_with_nodes`] for
/// several).
#[derive(Clone, Debug)]
pub struct SwitchConfig {
    /// Inbound Event Socket (mod_event_socket), e.g. 127.0.0.1:8021.
    pub esl: String,
    pub password: String,
    /// Where the dialplan's `socket` application connects, e.g. 127.0.0.1:8084.
    pub outbound_listen: String,
}

/// One FreeSWITCH node of several: a name (logs, metrics, the `switchyard_node` channel
/// variable) and its Event Socket.
#[derive(Clone, PartialEq, Eq)]
pub struct SwitchNode {
    pub name: String,
    /// Inbound Event Socket, `host:port`.
    pub esl: String,
    pub password: String,
}

impl std::fmt::Debug for SwitchNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("SwitchNode")
            .field("name", &self.name)
            .field("esl", &self.esl)
            .finish_non_exhaustive()
    }
}

/// The name a single switch gets when none is given.
pub const DEFAULT_NODE_NAME: &str = "fs1";

/// Readiness of the switch side: ready while at least one node's Event Socket is up (calls
/// can be taken and placed); the error names the nodes that are down.
pub fn switch_readiness(engine: &DriverHandle) -> Result<(), String> {
    if engine.connected() {
        return Ok(());
    }
    let down: Vec<String> = engine.nodes().into_iter().map(|n| n.name).collect();
    Err(format!(
        "no FreeSWITCH node is connected (down: {})",
        down.join(", ")
    ))
}

/// Something went wrong starting the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("driver: {0}")]
    Driver(#[from] DriverError),
    #[error("recordings: {0}")]
    Objects(#[from] crate::recording_objects::ObjectsError),
    #[error("stored {kind} {id} is invalid: {message}")]
    StoredConfig {
        kind: &'static str,
        id: i64,
        message: String,
    },
}

/// The time a live figure is read at, inside an engine query: the driver's clock (tokio's,
/// pausable in tests), never before the engine's last input. The engine's own `now` is its last
/// input's, so a wait computed against it would stand still between events.
/// How long an API change waits for its records to be filed before it answers anyway
/// (`DriverHandle::command_filed`): a database that is away costs one acquire timeout, then
/// the records go to the journal.
pub const FILED_WITHIN: Duration = Duration::from_secs(10);

pub fn read_now(e: &Engine) -> std::time::Instant {
    e.now().max(tokio::time::Instant::now().into_std())
}

pub struct Runtime {
    pub store: Store,
    pub directory: Arc<Directory>,
    pub engine: DriverHandle,
    /// The live feed (`/v1/live`) and the per-tenant state its snapshots come from.
    pub hub: LiveHub,
    pub live: Arc<LiveState>,
    /// Shows store ids to the API and reads them back (`crate::ids`).
    pub ids: IdCodec,
    /// Held by every configuration change through the API from validation to the engine's
    /// answer (see `routes::change`): one at a time, so an undo restores what it replaced.
    pub config_writes: tokio::sync::Mutex<()>,
    /// Records the store refused because another record is stored under their id (also
    /// counted in the driver's `records_dropped`): `switchyard_records_duplicate`.
    records_duplicate: Arc<AtomicU64>,
    /// Where `PUT /v1/recordings/upload/{file}` writes, and the secret it takes; `None`: the
    /// route answers 404.
    pub uploads: Option<Uploads>,
    /// Where recordings' audio is kept (`crate::recording_objects`).
    pub objects: Objects,
    /// Signs playback URLs (`routes::recording_media`).
    pub playback_key: Vec<u8>,
    /// Webhook targets on private, loopback or link-local addresses are allowed (the
    /// operator's `[webhooks] allow_private_targets`; off by default).
    webhooks_private: Arc<std::sync::atomic::AtomicBool>,
    /// Delivers the outbox's messages to the tenants' endpoints (`crate::webhooks::worker`).
    pub webhooks: crate::webhooks::worker::WorkerHandle,
    objects_task: JoinHandle<()>,
    driver: Option<Driver>,
    forwarder: JoinHandle<()>,
    /// Publishes the wallboard's figures of the day (`crate::wallboard::publisher`).
    wallboard: JoinHandle<()>,
    /// Saves the open interval for the next start (`crate::interval_carry`).
    checkpoints: Arc<crate::interval_carry::Checkpoints>,
    checkpoint_task: JoinHandle<()>,
}

/// Recording settings of a runtime.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub capture: switchyard_engine::driver::RecordingSetup,
    /// Enables the upload route (FreeSWITCH's mod_http_cache PUTs switch recordings there).
    pub upload_token: Option<String>,
    /// Where finished recordings are stored.
    pub objects: ObjectsConfig,
    /// How voicemail messages are taken (greeting, tone, `record`'s limits).
    pub voicemail: switchyard_engine::driver::VoicemailSetup,
}

/// The upload route's directory and secret.
#[derive(Clone)]
pub struct Uploads {
    pub dir: std::path::PathBuf,
    pub token: String,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The routing name of a queue (what `switchyard_queue` names in the dialplan): tenant name
/// and queue name, since queue names are only unique within a tenant.
pub fn route_name(tenant_name: &str, queue_name: &str) -> String {
    format!("{tenant_name}/{queue_name}")
}

impl Runtime {
    /// Loads every tenant's configuration into a new engine and starts it under the driver,
    /// against one FreeSWITCH.
    pub async fn start(
        store: Store,
        switch: SwitchConfig,
        engine_cfg: EngineConfig,
        seed: u64,
    ) -> Result<Runtime, RuntimeError> {
        let node = SwitchNode {
            name: DEFAULT_NODE_NAME.to_owned(),
            esl: switch.esl,
            password: switch.password,
        };
        Self::start_with_nodes(store, vec![node], &switch.outbound_listen, engine_cfg, seed).await
    }

    /// [`Runtime::start`] against several FreeSWITCH nodes (at least one; the first is the
    /// driver's first node). Every node's dialplan sends callers to `outbound_listen`.
    pub async fn start_with_nodes(
        store: Store,
        nodes: Vec<SwitchNode>,
        outbound_listen: &str,
        engine_cfg: EngineConfig,
        seed: u64,
    ) -> Result<Runtime, RuntimeError> {
        Self::start_recording(
            store,
            nodes,
            outbound_listen,
            Recording::default(),
            engine_cfg,
            seed,
        )
        .await
    }

    /// [`Runtime::start_with_nodes`] with recording set up: the driver's capture (the live
    /// recorder endpoint, where switch recordings appear) and the upload route's secret.
    pub async fn start_recording(
        store: Store,
        nodes: Vec<SwitchNode>,
        outbound_listen: &str,
        recording: Recording,
        engine_cfg: EngineConfig,
        seed: u64,
    ) -> Result<Runtime, RuntimeError> {
        let directory = Arc::new(Directory::default());
        let ids = IdCodec::new(&store.id_secret().await?);
        let playback_key = store.playback_secret().await?;
        let now = tokio::time::Instant::now().into_std();
        let mut engine_cfg = engine_cfg;
        if engine_cfg.origin_unix_ms == 0 {
            // Records and intervals are stamped from this: the wall clock at the engine's start.
            engine_cfg.origin_unix_ms = crate::store::now_ms().max(0) as u64;
        }
        // Empty: the stored configuration is fed through the running driver (`boot`).
        let engine = Engine::new(engine_cfg, seed, now);

        let mut nodes = nodes.into_iter();
        let first = nodes
            .next()
            .ok_or(RuntimeError::Driver(DriverError::Config(
                "at least one FreeSWITCH node".into(),
            )))?;
        let mut dcfg = DriverConfig::new(first.esl, first.password);
        dcfg.node_name = first.name;
        for n in nodes {
            dcfg = dcfg.add_node(n.name, n.esl, n.password);
        }
        dcfg.learn_queue_names = false;
        // Callers wait until their queues are loaded (admitted below, after boot); the switch
        // is taken over then too (see the driver's `adopt`).
        dcfg.hold_callers = true;
        dcfg.open_records = open_records(&store).await?;
        close_interrupted_recordings(&store, &recording.capture).await?;
        let uploads = recording.upload_token.clone().map(|token| Uploads {
            dir: recording.capture.switch_files.clone(),
            token,
        });
        dcfg.recording = recording.capture;
        dcfg.voicemail = recording.voicemail;
        let hub = LiveHub::new(LiveConfig::default());
        let (objects, objects_task) =
            Objects::start(store.clone(), &recording.objects, hub.clone(), ids.clone()).await?;
        let records_duplicate = Arc::new(AtomicU64::new(0));
        let webhooks_private = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Before the sink: every record batch it files wakes the worker.
        let webhooks = crate::webhooks::worker::start(crate::webhooks::worker::WorkerParts {
            store: store.clone(),
            ids: ids.clone(),
            hub: hub.clone(),
            allow_private: webhooks_private.clone(),
            clock: crate::webhooks::worker::Clock::default(),
        });
        let sink = StoreSink {
            wake_webhooks: webhooks.waker(),
            agent_states: HashMap::new(),
            store: store.clone(),
            directory: directory.clone(),
            duplicates: records_duplicate.clone(),
            objects: objects.clone(),
            hub: hub.clone(),
            ids: ids.clone(),
        };
        let driver = Driver::bind(dcfg, engine, outbound_listen, sink).await?;
        let handle = driver.handle().clone();
        let live = Arc::new(LiveState::new(ids.clone()));
        // Subscribed before boot: the live state follows boot's events too.
        let forwarder = tokio::spawn(forward(
            handle.subscribe(),
            directory.clone(),
            live.clone(),
            hub.clone(),
            ids.clone(),
            store.clone(),
        ));
        let booted = match crate::boot::load(&store, &handle, &directory, &live).await {
            // Flows apply from the first caller: the plan goes in before callers are admitted.
            Ok(b) => push_inbound(&store, &ids, &directory, &handle)
                .await
                .map(|()| b),
            Err(e) => Err(e),
        };
        // Admitting callers also starts the driver's takeover of the switch (conversations in
        // progress, the store's open rows): it needs the loaded configuration, and nothing is
        // dialled or offered to a possibly busy agent before it is over.
        let admitted = match booted {
            Ok(_) => handle.admit_callers().await.map_err(RuntimeError::Driver),
            Err(e) => Err(e),
        };
        if let Err(e) = admitted {
            forwarder.abort();
            webhooks.stop();
            if let Err(stop) = driver.shutdown().await {
                warn!(error = %stop, "the driver stopped with an error after a failed start");
            }
            return Err(e);
        }
        // What earlier runs counted in the open interval, added before anything reads it.
        let checkpoints =
            Arc::new(crate::interval_carry::Checkpoints::start(&store, &handle, &directory).await);
        let checkpoint_task = checkpoints.clone().spawn(handle.clone());
        let wallboard = crate::wallboard::publisher::spawn(crate::wallboard::publisher::Parts {
            store: store.clone(),
            engine: handle.clone(),
            directory: directory.clone(),
            live: live.clone(),
            hub: hub.clone(),
            ids: ids.clone(),
        });
        Ok(Runtime {
            store,
            directory,
            engine: handle,
            hub,
            live,
            ids,
            config_writes: tokio::sync::Mutex::new(()),
            records_duplicate,
            uploads,
            objects,
            objects_task,
            playback_key,
            webhooks_private,
            webhooks,
            driver: Some(driver),
            forwarder,
            wallboard,
            checkpoints,
            checkpoint_task,
        })
    }

    /// Whether webhook targets may be private, loopback or link-local addresses.
    pub fn webhooks_private(&self) -> bool {
        self.webhooks_private
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allows (or refuses) private webhook targets from now on (an endpoint already stored
    /// is checked again at every delivery).
    pub fn allow_private_webhooks(&self, allow: bool) {
        self.webhooks_private
            .store(allow, std::sync::atomic::Ordering::Relaxed);
    }

    /// What `/v1/live` sends first: the tenant's current state.
    pub fn snapshot_fn(&self) -> SnapshotFn {
        let live = self.live.clone();
        Arc::new(move |t| live.snapshot(t))
    }

    /// Where the dialplan's `socket` application must connect.
    pub fn outbound_addr(&self) -> std::net::SocketAddr {
        self.engine.outbound_addr()
    }

    /// Recomputes the dialled-number and name routes from the store (after a queue change), for
    /// the queues the engine runs.
    pub async fn refresh_routes(&self) -> Result<(), RuntimeError> {
        let tenants: HashMap<TenantId, String> = self
            .store
            .list_tenants()
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        let mut routes = HashMap::new();
        for q in self.store.all_queues().await? {
            let Ok(id) = u32::try_from(q.id) else {
                continue;
            };
            // Only queues the engine runs (a stored one it refused at start is not routed to).
            if self.directory.queue_tenant(QueueId(id)).is_none() {
                continue;
            }
            if let Ok(spec) = serde_json::from_value::<QueueSpec>(q.config.clone()) {
                for n in spec.numbers {
                    routes.insert(n, QueueId(id));
                }
            }
            routes.insert(
                route_name(tenants.get(&q.tenant).map_or("", String::as_str), &q.name),
                QueueId(id),
            );
        }
        self.engine.set_routes(routes).await?;
        // A queue added or removed changes what flows can route to.
        self.refresh_inbound().await
    }

    /// Rebuilds the number plan, flows and schedules from the store and hands them to the
    /// driver: new callers walk them at once.
    pub async fn refresh_inbound(&self) -> Result<(), RuntimeError> {
        push_inbound(&self.store, &self.ids, &self.directory, &self.engine).await
    }

    /// Keeps the engine's gauges in `/metrics` current (every `every`): calls in progress
    /// and waiting, agents by state, the switch connection, and the driver's loss counters.
    pub fn spawn_gauges(&self, metrics: Metrics, every: Duration) -> JoinHandle<()> {
        let engine = self.engine.clone();
        let duplicates = self.records_duplicate.clone();
        let store = self.store.clone();
        tokio::spawn(async move {
            use switchyard_engine::agent::AgentStateKind;
            let g = |name: &'static str| metrics.gauge(name, &[]);
            let calls = g("switchyard_calls_active");
            let waiting = g("switchyard_calls_waiting");
            let connected = g("switchyard_freeswitch_connected");
            // Per node: connection, legs in flight, and features lacking a module there.
            let per_node: Vec<_> = engine
                .nodes()
                .into_iter()
                .map(|n| {
                    let label = [("node", n.name)];
                    (
                        (
                            metrics.gauge("switchyard_freeswitch_node_connected", &label),
                            metrics.gauge("switchyard_freeswitch_node_legs", &label),
                        ),
                        metrics.gauge("switchyard_freeswitch_node_features_unavailable", &label),
                    )
                })
                .collect();
            let dropped = g("switchyard_records_dropped");
            let duplicate = g("switchyard_records_duplicate");
            let failed = g("switchyard_switch_commands_failed");
            let bridges_failed = g("switchyard_bridges_failed");
            let orphans = g("switchyard_orphan_legs_killed");
            let late_failures = g("switchyard_originates_failed_after_answer");
            // Configured sounds a node lacks (callers there hear a tone instead).
            let sounds_missing = g("switchyard_sounds_missing");
            // The database and the journal that holds writes while it is away.
            let database_up = g("switchyard_database_up");
            let journal_entries = g("switchyard_journal_pending_entries");
            let journal_bytes = g("switchyard_journal_pending_bytes");
            let journal_replayed = g("switchyard_journal_replayed");
            let journal_refused = g("switchyard_journal_refused_at_bound");
            let by_state: Vec<_> = AgentStateKind::ALL
                .iter()
                .map(|k| {
                    let label = serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (*k, metrics.gauge("switchyard_agents", &[("state", label)]))
                })
                .collect();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Ok((active, snap)) = engine
                    .query(|e| (e.active_calls(), e.stats().totals(read_now(e))))
                    .await
                else {
                    return; // the engine stopped
                };
                calls.set(active as f64);
                waiting.set(snap.waiting as f64);
                for (k, gauge) in &by_state {
                    gauge.set(f64::from(*snap.agents.get(*k)));
                }
                connected.set(if engine.connected() { 1.0 } else { 0.0 });
                for (((up, legs), unavailable), n) in per_node.iter().zip(engine.nodes()) {
                    up.set(if n.connected { 1.0 } else { 0.0 });
                    legs.set(n.legs as f64);
                    unavailable.set(n.features_unavailable.map_or(0, |g| g.len()) as f64);
                }
                let st = engine.stats();
                // A replay's losses are the sink's too: the records left the driver as written.
                let spool = store.spool_status();
                let (replay_dropped, replay_dups) = spool
                    .as_ref()
                    .map_or((0, 0), |s| (s.replay_dropped + s.duplicates, s.duplicates));
                dropped.set((st.records_dropped + replay_dropped) as f64);
                duplicate.set((duplicates.load(Ordering::Relaxed) + replay_dups) as f64);
                database_up.set(if store.known_down() { 0.0 } else { 1.0 });
                if let Some(s) = &spool {
                    journal_entries.set(s.pending_entries as f64);
                    journal_bytes.set(s.pending_bytes as f64);
                    journal_replayed.set(s.replayed as f64);
                    journal_refused.set(s.refused_at_bound as f64);
                }
                failed.set(st.commands_failed as f64);
                bridges_failed.set(st.bridges_failed as f64);
                orphans.set(st.orphans_killed as f64);
                late_failures.set(st.originates_failed_after_answer as f64);
                sounds_missing.set(st.sounds_missing as f64);
            }
        })
    }

    /// Deletes raw history older than `keep` now and once a day (`[history] keep_days`;
    /// `store::retention`). The interval rollups stay.
    pub fn spawn_history_retention(&self, keep: Duration) -> JoinHandle<()> {
        let store = self.store.clone();
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(24 * 3600));
            loop {
                every.tick().await;
                let before = crate::store::now_ms().saturating_sub(keep_ms);
                match store.prune_history(before).await {
                    Ok(p) => info!(?p, before_ms = before, "history past its retention deleted"),
                    Err(e) => warn!(error = %e, "could not delete history past its retention"),
                }
            }
        })
    }

    pub async fn shutdown(mut self) {
        // The last checkpoint is the stopped engine's, below: none may overtake it.
        self.checkpoint_task.abort();
        if let Some(driver) = self.driver.take() {
            match driver.shutdown().await {
                Ok(report) => {
                    // The open interval is in no interval row: saved for the next start,
                    // which carries it in.
                    self.checkpoints.save_stopped(&report.engine).await;
                    info!(?report, "driver stopped");
                }
                Err(e) => warn!(error = %e, "driver stopped with an error"),
            }
        }
        self.wallboard.abort();
        self.forwarder.abort();
        self.webhooks.stop();
        self.objects_task.abort();
        self.hub.close();
    }
}

/// What the store holds open from before this start (calls without their final record,
/// campaign dials without their final attempt): the driver judges them against the switch.
async fn open_records(store: &Store) -> Result<OpenRecords, RuntimeError> {
    let calls: Vec<CallOpen> = store
        .open_calls()
        .await?
        .into_iter()
        .filter_map(|c| {
            Some(CallOpen {
                // The engine that opened it is gone; the record is known by its leg.
                call: switchyard_engine::CallId(0),
                leg: LegId(c.id.as_u128()),
                queue: QueueId(u32::try_from(c.queue_id).ok()?),
                caller_number: c.caller_number,
                arrived_unix_ms: u64::try_from(c.arrived_at_ms).unwrap_or(0),
            })
        })
        .collect();
    let dials: Vec<_> = store
        .open_dials()
        .await?
        .into_iter()
        .filter_map(|d| {
            let a = d.attempt;
            Some((
                AttemptStart {
                    campaign: switchyard_engine::CampaignId(u32::try_from(a.campaign_id).ok()?),
                    contact: switchyard_engine::ContactId(u64::try_from(a.contact_id).ok()?),
                    leg: LegId::parse(&a.leg)?,
                    attempt: u32::try_from(a.attempt).unwrap_or(1),
                    dialed_unix_ms: u64::try_from(a.dialed_at_ms).unwrap_or(0),
                },
                d.number,
                d.zone,
            ))
        })
        .collect();
    if !calls.is_empty() || !dials.is_empty() {
        info!(
            calls = calls.len(),
            dials = dials.len(),
            "the store holds work from before this start; it is judged against the switch once connected"
        );
    }
    Ok(OpenRecords { calls, dials })
}

/// Files the engine's live events under their tenants, keeps the live state current and
/// publishes the deltas.
async fn forward(
    mut rx: broadcast::Receiver<LiveEvent>,
    dir: Arc<Directory>,
    live: Arc<LiveState>,
    hub: LiveHub,
    ids: IdCodec,
    store: Store,
) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "live forwarder fell behind the engine");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(msg) = live
            .apply(&ev, |q| dir.queue_tenant(q), |a| dir.agent_tenant(a))
            .or_else(|| crate::campaign_runtime::live_message(&ev, &dir, &ids))
        else {
            continue;
        };
        // An agent's screen shows a campaign call's contact with its fields, and a preview's
        // campaign name and codes: the store's. They are looked up aside and follow as a
        // delta of their own (the feed never waits on the store: every tenant's events go
        // through here).
        let details = match &ev {
            LiveEvent::PreviewReserved {
                campaign, contact, ..
            } => Some(("call.preview", *campaign, *contact)),
            LiveEvent::CampaignCall {
                campaign, contact, ..
            } => Some(("call.contact", *campaign, *contact)),
            _ => None,
        };
        let call = msg.data["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok());
        let tenant = msg.tenant;
        hub.publish(msg);
        if let (Some((kind, campaign, contact)), Some(call)) = (details, call) {
            let (store, live, hub) = (store.clone(), live.clone(), hub.clone());
            tokio::spawn(async move {
                let details =
                    crate::campaign_runtime::contact_details(&store, tenant, campaign, contact)
                        .await;
                live.publish_details(&hub, tenant, kind, call, &details);
            });
        }
    }
}

/// Writes the engine's records to the store: one transaction per kind per batch. With a
/// journal (`serve` always has one) a database that is away costs one acquire timeout, then
/// the rows go to the journal and `write` returns (the store's spool, `store::spool`); without
/// one, writes are retried with backoff (records wait in the driver's bounded pipe meanwhile;
/// routing never waits).
struct StoreSink {
    store: Store,
    /// The webhook worker: told when a batch (and its outbox messages) is filed.
    wake_webhooks: Arc<tokio::sync::Notify>,
    /// The state (and reason) each agent was last filed in: boot reports every agent's
    /// stored presence again, and the same state again is no change (no row, no
    /// `agent.state_changed`). Read from the store the first time an agent is seen.
    agent_states: HashMap<AgentId, (String, Option<String>)>,
    directory: Arc<Directory>,
    duplicates: Arc<AtomicU64>,
    objects: Objects,
    hub: LiveHub,
    /// Live events show ids as the API does.
    ids: IdCodec,
}

/// An interval record as the store keeps it, under its queue's or agent's tenant (the total
/// is platform-wide).
pub(crate) fn interval_row(i: &IntervalRecord, dir: &Directory) -> IntervalRow {
    let (tenant, scope) = match i.scope {
        Scope::Queue(q) => (dir.queue_tenant(q), IntervalScope::Queue(i64::from(q.0))),
        Scope::Agent(a) => (dir.agent_tenant(a), IntervalScope::Agent(i64::from(a.0))),
        Scope::Total => (None, IntervalScope::Total),
    };
    IntervalRow {
        tenant,
        scope,
        start_ms: i64::try_from(i.start_unix_ms).unwrap_or(i64::MAX),
        end_ms: i64::try_from(i.end_unix_ms).unwrap_or(i64::MAX),
        figures: serde_json::to_value(&i.figures).unwrap_or(Value::Null),
    }
}

fn uuid_of(leg: switchyard_engine::LegId) -> Uuid {
    Uuid::from_u128(leg.0)
}

/// An engine figure (unix ms, a duration, a size) as the store's BIGINT; past `i64::MAX`
/// (beyond any clock or file) it saturates.
fn stored_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The open row of a recording about to start. The engine's open record carries the
/// recording's identity and start only; mode, capture, agents and the caller arrive with the
/// final record, so they stay empty here (a restart closes an open row from its identity).
fn recording_open_row(
    o: &switchyard_engine::recording::RecordingOpen,
    tenant: TenantId,
) -> RecordingRow {
    RecordingRow {
        id: Uuid::from_u128(o.id.0),
        tenant,
        call_id: uuid_of(o.call_leg),
        leg: uuid_of(o.leg),
        queue_id: i64::from(o.queue.0),
        campaign_id: o.campaign.map(|c| i64::from(c.0)),
        agents: Vec::new(),
        caller_number: String::new(),
        mode: String::new(),
        capture: String::new(),
        fell_back: false,
        stereo: false,
        path: String::new(),
        started_at_ms: stored_i64(o.started_unix_ms),
        ended_at_ms: None,
        status: crate::store::OPEN_RECORDING.to_owned(),
        error: None,
        duration_ms: None,
        sample_rate: None,
        channels: None,
        bytes: None,
        silence_ratio: None,
        spans: Value::Array(Vec::new()),
        waveform: Value::Null,
        kind: crate::store::CALL_RECORDING.to_owned(),
        mailbox_queue: None,
        mailbox_agent: None,
    }
}

/// Recordings still open in the store when the runtime starts were cut off by the stop (a
/// crash, a kill): no driver will report them. Each is closed from what its file holds: the
/// live recorder rewrites its WAV header every second, so a live file plays up to its last
/// flush (`damaged`, with the figures of what is there); with no file, `failed`. Run before the
/// driver starts, so no recording of this run can be among them. (With several instances on
/// one database this belongs to the instance that holds the lease.)
async fn close_interrupted_recordings(
    store: &Store,
    setup: &switchyard_engine::driver::RecordingSetup,
) -> Result<(), RuntimeError> {
    let open = store.open_recordings().await?;
    if open.is_empty() {
        return Ok(());
    }
    let mut closed = Vec::with_capacity(open.len());
    for row in open {
        let file = format!("{}.wav", row.id);
        let candidates = [
            (setup.live_dir.join(&file), "live"),
            (setup.switch_files.join(&file), "switch"),
        ];
        let found = candidates.into_iter().find(|(p, _)| p.exists());
        let (path, capture, figures, why) = match found {
            Some((path, capture)) => {
                let p = path.clone();
                let (figures, why) =
                    tokio::task::spawn_blocking(move || switchyard_engine::driver::check_file(&p))
                        .await
                        .unwrap_or((None, Some("the check did not finish".into())));
                (path.display().to_string(), capture, figures, why)
            }
            None => (String::new(), "", None, Some("no file".to_owned())),
        };
        let error = format!(
            "interrupted: switchyard stopped while recording ({})",
            why.as_deref().unwrap_or("the file is whole up to the stop")
        );
        let ended = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(crate::store::now_ms, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            })
            .max(row.started_at_ms);
        let status = if figures.is_some() {
            "damaged"
        } else {
            "failed"
        };
        let mut done = row;
        done.capture = capture.to_owned();
        done.path = path;
        done.ended_at_ms = Some(ended);
        done.status = status.to_owned();
        done.error = Some(error);
        if let Some(f) = &figures {
            measured(&mut done, f);
        }
        warn!(recording = %done.id, status, "a recording cut off by the last stop is closed");
        closed.push(done);
    }
    store.insert_recordings(&closed).await?;
    Ok(())
}

/// The final row of a finished recording (it replaces the open row of its id).
fn recording_row(
    r: switchyard_engine::recording::RecordingRecord,
    tenant: TenantId,
) -> RecordingRow {
    let mut row = RecordingRow {
        id: Uuid::from_u128(r.id.0),
        tenant,
        call_id: uuid_of(r.call_leg),
        leg: uuid_of(r.leg),
        queue_id: i64::from(r.queue.0),
        campaign_id: r.campaign.map(|c| i64::from(c.0)),
        agents: r.agents.iter().map(|a| i64::from(a.0)).collect(),
        caller_number: r.caller_number,
        mode: r.mode.as_str().to_owned(),
        capture: r.capture.as_str().to_owned(),
        fell_back: r.fell_back,
        stereo: r.stereo,
        path: r.path,
        started_at_ms: stored_i64(r.started_unix_ms),
        ended_at_ms: Some(stored_i64(r.ended_unix_ms)),
        status: r.status.as_str().to_owned(),
        error: r.error,
        duration_ms: None,
        sample_rate: None,
        channels: None,
        bytes: None,
        silence_ratio: None,
        // Spans are plain structs of strings and integers: they always serialise.
        spans: serde_json::to_value(&r.spans).unwrap_or_else(|_| Value::Array(Vec::new())),
        waveform: Value::Null,
        kind: crate::store::CALL_RECORDING.to_owned(),
        mailbox_queue: None,
        mailbox_agent: None,
    };
    if let Some(f) = &r.figures {
        measured(&mut row, f);
    }
    row
}

/// The tenant of a voicemail box, and the box as the recordings table keeps it: a queue's
/// box under that queue (`queue_id` and `mailbox_queue`), an agent's under no queue (0).
fn mailbox_row(
    directory: &Directory,
    mailbox: switchyard_engine::Mailbox,
) -> Option<(TenantId, i64, Option<i64>, Option<i64>)> {
    use switchyard_engine::Mailbox;
    match mailbox {
        Mailbox::Queue(q) => {
            let tenant = directory.queue_tenant(q)?;
            Some((tenant, i64::from(q.0), Some(i64::from(q.0)), None))
        }
        Mailbox::Agent(a) => {
            let tenant = directory.agent_tenant(a)?;
            Some((tenant, 0, None, Some(i64::from(a.0))))
        }
    }
}

/// The open row of a voicemail message about to be recorded (kind `voicemail`; the call is
/// the caller's leg). A restart closes it from its file like a recording's.
fn voicemail_open_row(
    o: &switchyard_engine::VoicemailOpen,
    directory: &Directory,
) -> Option<RecordingRow> {
    let (tenant, queue_id, mailbox_queue, mailbox_agent) = mailbox_row(directory, o.mailbox)?;
    Some(RecordingRow {
        id: Uuid::from_u128(o.id.0),
        tenant,
        call_id: uuid_of(o.leg),
        leg: uuid_of(o.leg),
        queue_id,
        campaign_id: None,
        // The box's agent, so its own key may play the message (recordings' rule).
        agents: mailbox_agent.into_iter().collect(),
        caller_number: o.caller_number.clone(),
        mode: "voicemail".to_owned(),
        capture: "switch".to_owned(),
        fell_back: false,
        stereo: false,
        path: String::new(),
        started_at_ms: stored_i64(o.started_unix_ms),
        ended_at_ms: None,
        status: crate::store::OPEN_RECORDING.to_owned(),
        error: None,
        duration_ms: None,
        sample_rate: None,
        channels: None,
        bytes: None,
        silence_ratio: None,
        spans: Value::Array(Vec::new()),
        waveform: Value::Null,
        kind: crate::store::VOICEMAIL.to_owned(),
        mailbox_queue,
        mailbox_agent,
    })
}

/// The final row of a voicemail message: its open row, ended (it replaces the open row of
/// its id).
fn voicemail_row(
    r: switchyard_engine::VoicemailRecord,
    directory: &Directory,
) -> Option<RecordingRow> {
    let open = switchyard_engine::VoicemailOpen {
        id: r.id,
        leg: r.leg,
        mailbox: r.mailbox,
        caller_number: r.caller_number,
        started_unix_ms: r.started_unix_ms,
    };
    let mut row = voicemail_open_row(&open, directory)?;
    row.path = r.path;
    row.ended_at_ms = Some(stored_i64(r.ended_unix_ms));
    row.status = r.status.as_str().to_owned();
    row.error = r.error;
    if let Some(f) = &r.figures {
        measured(&mut row, f);
    }
    Some(row)
}

/// A recording row's measurements, from the checked file.
fn measured(row: &mut RecordingRow, f: &switchyard_engine::recording::AudioFigures) {
    row.duration_ms = Some(stored_i64(f.duration_ms));
    row.sample_rate = Some(i32::try_from(f.sample_rate).unwrap_or(i32::MAX));
    row.channels = Some(i32::from(f.channels));
    row.bytes = Some(stored_i64(f.bytes));
    // SQLite stores NaN as NULL: a measurement that is not a number is none.
    row.silence_ratio = Some(f.silence_ratio).filter(|v| v.is_finite());
    row.waveform = waveform(f);
}

/// A recording's measurements as its `waveform` document: per channel the peak (dBFS, null
/// for an all-zero channel) and the silence share, and the drawn (min, max) pairs.
fn waveform(f: &switchyard_engine::recording::AudioFigures) -> Value {
    let peaks: Vec<Value> = f
        .peaks
        .iter()
        .map(|channel| {
            channel
                .iter()
                .map(|&(min, max)| Value::Array(vec![f32_json(min), f32_json(max)]))
                .collect()
        })
        .collect();
    serde_json::json!({
        "peak_dbfs": f.peak_dbfs.iter().map(|p| p.map_or(Value::Null, f64_json)).collect::<Vec<_>>(),
        "channel_silence": f.channel_silence.iter().copied().map(f64_json).collect::<Vec<_>>(),
        "frames_per_peak": f.frames_per_peak,
        "peaks": peaks,
    })
}

/// A measurement as JSON; JSON has no NaN or infinity, so those are null.
fn f64_json(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// An f32 sample value as JSON, by its shortest decimal form: widened bit for bit it would
/// print as `0.10000000149011612` for `0.1`, doubling the size of every waveform for digits
/// the samples never had.
fn f32_json(v: f32) -> Value {
    v.to_string().parse::<f64>().map_or(Value::Null, f64_json)
}

impl StoreSink {
    /// Whether `row` is a change from the agent's last filed state (and notes it as the
    /// last). A store that does not answer counts as a change: a repeated row is harmless,
    /// a lost one is not.
    async fn agent_state_changed(
        &mut self,
        agent: AgentId,
        row: &crate::store::outbox::AgentStateRow,
    ) -> bool {
        let now = (row.state.clone(), row.reason.clone());
        let last = match self.agent_states.get(&agent) {
            Some(last) => Some(last.clone()),
            None => self
                .store
                .last_agent_state(row.tenant, row.agent_id)
                .await
                .ok()
                .flatten()
                .map(|r| (r.state, r.reason)),
        };
        self.agent_states.insert(agent, now.clone());
        last.as_ref() != Some(&now)
    }
}

impl RecordSink for StoreSink {
    async fn write(&mut self, batch: Vec<Record>) -> u64 {
        let mut calls = Vec::new();
        let mut cdrs = Vec::new();
        let mut traces = Vec::new();
        let mut recordings = Vec::new();
        let mut intervals = Vec::new();
        let mut journeys = Vec::new();
        let mut answers = Vec::new();
        let mut agent_states = Vec::new();
        let mut presence: HashMap<AgentId, Value> = HashMap::new();
        let mut unfiled = 0u64;
        let mut campaign = crate::campaign_runtime::CampaignRecords::default();
        for r in batch {
            let Some(r) = campaign.take(r, &self.directory) else {
                continue;
            };
            match r {
                Record::Call(c) => {
                    let Some(q) = c.queues.last().copied() else {
                        // Refused before joining any queue (an unknown queue): nothing to file.
                        unfiled += 1;
                        continue;
                    };
                    let Some(tenant) = self.directory.queue_tenant(q) else {
                        unfiled += 1;
                        continue;
                    };
                    calls.push(CallRow {
                        id: uuid_of(c.leg),
                        tenant,
                        queue_id: i64::from(q.0),
                        queues: c.queues.iter().map(|q| i64::from(q.0)).collect(),
                        agent_id: c.agent.map(|a| i64::from(a.0)),
                        caller_number: c.caller_number,
                        outcome: serde_json::to_value(c.outcome)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        arrived_at_ms: i64::try_from(c.arrived_unix_ms).unwrap_or(i64::MAX),
                        wait_ms: (c.wait_s * 1000.0) as i64,
                        talk_ms: (c.talk_s * 1000.0) as i64,
                        offers: i32::try_from(c.offers).unwrap_or(i32::MAX),
                        synthetic: c.synthetic,
                        callback_leg: c.callback_leg.map(uuid_of),
                    });
                }
                Record::Decision(t) => {
                    let Some(tenant) = self.directory.queue_tenant(t.queue) else {
                        unfiled += 1;
                        continue;
                    };
                    traces.push(TraceRow {
                        id: format!("{}:{}", uuid_of(t.call_leg), t.offer.0),
                        tenant,
                        call_id: uuid_of(t.call_leg),
                        at_ms: i64::try_from(t.at_unix_ms).unwrap_or(i64::MAX),
                        queue_id: i64::from(t.queue.0),
                        agent_id: Some(i64::from(t.agent.0)),
                        trace: serde_json::to_value(&*t).unwrap_or(Value::Null),
                    });
                }
                Record::Interval(i) => intervals.push(interval_row(&i, &self.directory)),
                Record::CallOpened(o) => {
                    let Some(tenant) = self.directory.queue_tenant(o.queue) else {
                        unfiled += 1;
                        continue;
                    };
                    calls.push(CallRow {
                        id: uuid_of(o.leg),
                        tenant,
                        queue_id: i64::from(o.queue.0),
                        queues: vec![i64::from(o.queue.0)],
                        agent_id: None,
                        caller_number: o.caller_number,
                        outcome: crate::store::OPEN_CALL.to_owned(),
                        arrived_at_ms: i64::try_from(o.arrived_unix_ms).unwrap_or(i64::MAX),
                        wait_ms: 0,
                        talk_ms: 0,
                        offers: 0,
                        synthetic: false,
                        callback_leg: None,
                    });
                }
                Record::RecordingOpened(o) => {
                    let Some(tenant) = self.directory.queue_tenant(o.queue) else {
                        unfiled += 1;
                        continue;
                    };
                    recordings.push(recording_open_row(&o, tenant));
                }
                Record::Recording(r) => {
                    let Some(tenant) = self.directory.queue_tenant(r.queue) else {
                        unfiled += 1;
                        continue;
                    };
                    recordings.push(recording_row(*r, tenant));
                }
                Record::VoicemailOpened(o) => match voicemail_open_row(&o, &self.directory) {
                    Some(row) => recordings.push(row),
                    None => unfiled += 1,
                },
                Record::Voicemail(r) => match voicemail_row(*r, &self.directory) {
                    Some(row) => recordings.push(row),
                    None => unfiled += 1,
                },
                // Taken by `campaign` above.
                Record::Attempt(_)
                | Record::AttemptStarted(_)
                | Record::PacerState { .. }
                | Record::Disposition(_)
                | Record::CampaignState { .. } => {}
                Record::Journey(j) => {
                    let Some(tenant) = self.directory.flow_tenant(&j.flow) else {
                        unfiled += 1;
                        continue;
                    };
                    journeys.push(crate::store::JourneyRow {
                        call_id: uuid_of(j.leg),
                        tenant,
                        flow_id: j.flow,
                        dialled: j.dialled,
                        caller_number: j.caller_number,
                        started_at_ms: stored_i64(j.started_unix_ms),
                        ended_at_ms: stored_i64(j.ended_unix_ms),
                        routed: j.routed,
                        journey: serde_json::from_str(&j.journey).unwrap_or(Value::Null),
                    });
                }
                Record::Cdr(c) => {
                    // A caller who left in its flow has no queue: its flow says whose it is.
                    let tenant = c
                        .queue
                        .and_then(|q| self.directory.queue_tenant(q))
                        .or_else(|| {
                            c.flow
                                .as_deref()
                                .and_then(|f| self.directory.flow_tenant(f))
                        });
                    cdrs.push(CdrRow {
                        leg: uuid_of(c.leg),
                        tenant,
                        call_id: c.call_leg.map(uuid_of),
                        direction: c.direction,
                        caller_number: c.caller_number,
                        destination: c.destination,
                        hangup_cause: c.hangup_cause,
                        started_at_ms: i64::try_from(c.started_unix_ms).unwrap_or(i64::MAX),
                        answered_at_ms: c
                            .answered_unix_ms
                            .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
                        ended_at_ms: i64::try_from(c.ended_unix_ms).unwrap_or(i64::MAX),
                        billsec_ms: i64::try_from(c.billsec_ms).unwrap_or(i64::MAX),
                        synthetic: false,
                    });
                }
                Record::CallAnswered(a) => {
                    let Some(tenant) = self.directory.queue_tenant(a.queue) else {
                        unfiled += 1;
                        continue;
                    };
                    answers.push(crate::store::outbox::AnswerRow {
                        call_id: uuid_of(a.leg),
                        tenant,
                        queue_id: i64::from(a.queue.0),
                        agent_id: i64::from(a.agent.0),
                        caller_number: a.caller_number,
                        answered_at_ms: stored_i64(a.answered_unix_ms),
                        wait_ms: (a.wait_s * 1000.0) as i64,
                        callback_leg: a.callback_leg.map(uuid_of),
                    });
                }
                Record::AgentState(s) => {
                    if let Some(tenant) = self.directory.agent_tenant(s.agent) {
                        let row = crate::store::outbox::AgentStateRow {
                            tenant,
                            agent_id: i64::from(s.agent.0),
                            at_ms: stored_i64(s.at_unix_ms),
                            state: serde_json::to_value(s.state)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            reason: s.reason.clone(),
                        };
                        if self.agent_state_changed(s.agent, &row).await {
                            agent_states.push(row);
                        }
                    }
                    // Presence survives a restart; the engine's own states do not need to.
                    use switchyard_engine::agent::AgentStateKind as K;
                    let p = match s.state {
                        K::LoggedOut => Some(Presence::LoggedOut),
                        K::Available => Some(Presence::Available),
                        K::OnBreak => Some(Presence::OnBreak(s.reason.unwrap_or_default())),
                        _ => None,
                    };
                    if let Some(p) = p.and_then(|p| serde_json::to_value(p).ok()) {
                        presence.insert(s.agent, p);
                    }
                }
            }
        }
        let mut lost = unfiled;
        let store = &self.store;
        let dups = &self.duplicates;
        lost += write_records(
            "calls",
            calls,
            |c| c.id.to_string(),
            dups,
            |rows| {
                let store = store.clone();
                Box::pin(async move { store.insert_calls(rows).await })
            },
        )
        .await;
        lost += write_records(
            "traces",
            traces,
            |t| t.id.clone(),
            dups,
            |rows| {
                let store = store.clone();
                Box::pin(async move { store.insert_traces(rows).await })
            },
        )
        .await;
        // Finished recordings go to storage once their rows are filed (a row the store lost
        // is found by the next start's `pending_objects` if its record is replayed).
        let finished: Vec<RecordingRow> = recordings
            .iter()
            .filter(|r| r.status != crate::store::OPEN_RECORDING)
            .cloned()
            .collect();
        lost += write_records(
            "recordings",
            recordings,
            |r| r.id.to_string(),
            dups,
            |rows| {
                let store = store.clone();
                Box::pin(async move { store.insert_recordings(rows).await })
            },
        )
        .await;
        if !finished.is_empty() {
            self.objects.spool(&finished).await;
            crate::recording_objects::publish_failed(&self.hub, &self.ids, &finished);
        }
        lost += retry("intervals", intervals.len(), || {
            self.store.insert_intervals(&intervals)
        })
        .await;
        lost += retry("journeys", journeys.len(), || {
            self.store.insert_journeys(&journeys)
        })
        .await;
        lost += write_records(
            "cdrs",
            cdrs,
            |c| c.leg.to_string(),
            dups,
            |rows| {
                let store = store.clone();
                Box::pin(async move { store.insert_cdrs(rows).await })
            },
        )
        .await;
        lost += campaign.write(&self.store, dups).await;
        lost += retry("answers", answers.len(), || {
            self.store.insert_answers(&answers)
        })
        .await;
        lost += retry("agent states", agent_states.len(), || {
            self.store.insert_agent_states(&agent_states)
        })
        .await;
        self.wake_webhooks.notify_one();

        for (agent, p) in presence {
            if let Some(t) = self.directory.agent_tenant(agent)
                && let Err(e) = self
                    .store
                    .set_agent_presence(t, i64::from(agent.0), p)
                    .await
            {
                warn!(error = %e, %agent, "could not save an agent's presence");
            }
        }
        lost
    }
}

/// The most ids one WARN names (the rest are counted).
const DUPLICATES_LOGGED: usize = 10;

/// [`retry`] for records with an identity: the records the store refuses because another
/// record is stored under their id ([`StoreError::Duplicate`]) are logged at WARN, counted in
/// `duplicates` and left out, and the rest is written again at once (the store wrote nothing).
/// Returns how many rows were not kept, duplicates included.
pub(crate) async fn write_records<T, F>(
    what: &str,
    mut rows: Vec<T>,
    id: impl Fn(&T) -> String,
    duplicates: &AtomicU64,
    write: F,
) -> u64
where
    F: for<'a> Fn(&'a [T]) -> crate::http::BoxFuture<'a, Result<(), StoreError>>,
{
    let mut refused = 0u64;
    let mut delay = Duration::from_millis(100);
    let mut failures = 0;
    while !rows.is_empty() {
        let err = match write(&rows).await {
            Ok(()) => return refused,
            Err(e) => e,
        };
        if let StoreError::Duplicate { ids, .. } = &err {
            let before = rows.len();
            rows.retain(|r| !ids.contains(&id(r)));
            let n = (before - rows.len()) as u64;
            if n > 0 {
                refused += n;
                duplicates.fetch_add(n, Ordering::Relaxed);
                let shown: Vec<&str> = ids
                    .iter()
                    .take(DUPLICATES_LOGGED)
                    .map(String::as_str)
                    .collect();
                warn!(
                    refused = n,
                    ids = %shown.join(", "),
                    "{what} refused: another record is already stored under the same id \
                     (see switchyard_records_duplicate); the stored one is kept"
                );
                continue;
            }
        }
        if let StoreError::JournalFull { .. } = &err {
            // Neither stored nor journaled, and retrying cannot help until the database is
            // back: dropped now (the spool logged it at ERROR), so the sink does not stall.
            return refused + rows.len() as u64;
        }
        // Anything else (and a refusal naming none of these rows, which cannot loop).
        warn!(error = %err, attempt = failures, rows = rows.len(), "writing {what} failed; retrying");
        failures += 1;
        if failures >= 10 {
            warn!(rows = rows.len(), "gave up writing {what}");
            return refused + rows.len() as u64;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    refused
}

/// Runs a batch write until it succeeds, backing off up to a minute in all; returns how many
/// rows were given up on.
pub(crate) async fn retry<F, Fut>(what: &str, n: usize, mut f: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    if n == 0 {
        return 0;
    }
    let mut delay = Duration::from_millis(100);
    for attempt in 0..10 {
        match f().await {
            Ok(()) => return 0,
            // See `write_records`: at the journal's bound the rows are dropped at once.
            Err(StoreError::JournalFull { .. }) => return n as u64,
            Err(e) => {
                warn!(error = %e, attempt, rows = n, "writing {what} failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    warn!(rows = n, "gave up writing {what}");
    n as u64
}

async fn push_inbound(
    store: &Store,
    ids: &IdCodec,
    directory: &Directory,
    engine: &DriverHandle,
) -> Result<(), RuntimeError> {
    let plan = crate::inbound_plan::build(store, ids, directory).await?;
    engine.set_inbound(plan.map(Arc::new)).await?;
    Ok(())
}

/// Files engine records through the running writer (`StoreSink`), as the driver does: for
/// tests that run a simulated day through the real record path. Returns the records lost.
#[doc(hidden)]
pub async fn file_records(rt: &Runtime, records: Vec<Record>) -> u64 {
    let mut sink = StoreSink {
        wake_webhooks: rt.webhooks.waker(),
        agent_states: HashMap::new(),
        store: rt.store.clone(),
        directory: rt.directory.clone(),
        duplicates: rt.records_duplicate.clone(),
        objects: rt.objects.clone(),
        hub: rt.hub.clone(),
        ids: rt.ids.clone(),
    };
    sink.write(records).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_engine::recording::{
        AudioFigures, RecordingOpen, RecordingRecord, RecordingSpan, RecordingStatus, SpanKind,
    };
    use switchyard_engine::{CallId, CampaignId, RecordingCapture, RecordingId, RecordingMode};

    use super::*;

    const ID: u128 = 0x0192_0000_0000_7000_8000_0000_0000_0001;
    const CALL_LEG: u128 = 0xa1;
    const LEG: u128 = 0xb2;

    fn tenant() -> TenantId {
        TenantId(Uuid::from_u128(0x7e))
    }

    fn record(figures: Option<AudioFigures>) -> RecordingRecord {
        RecordingRecord {
            id: RecordingId(ID),
            call: CallId(4),
            call_leg: LegId(CALL_LEG),
            leg: LegId(LEG),
            queue: QueueId(3),
            campaign: Some(CampaignId(11)),
            agents: vec![AgentId(7), AgentId(9)],
            caller_number: "+15550001234".into(),
            mode: RecordingMode::AlwaysForced,
            capture: RecordingCapture::Switch,
            fell_back: true,
            stereo: true,
            path: "/rec/a.wav".into(),
            started_unix_ms: 1_000,
            ended_unix_ms: 61_000,
            spans: vec![RecordingSpan {
                kind: SpanKind::Masked,
                start_ms: 5_000,
                end_ms: 9_000,
                by: "sup".into(),
                ended_by: String::new(),
            }],
            status: RecordingStatus::Damaged,
            figures,
            error: Some("truncated".into()),
        }
    }

    fn figures() -> AudioFigures {
        AudioFigures {
            duration_ms: 59_990,
            sample_rate: 8000,
            channels: 2,
            bytes: 959_724,
            silence_ratio: 0.25,
            peak_dbfs: vec![Some(-3.5), None],
            channel_silence: vec![0.125, 1.0],
            peaks: vec![
                vec![(-0.1, 0.1), (-0.5, 0.75)],
                vec![(0.0, 0.0), (0.0, 0.0)],
            ],
            frames_per_peak: 240,
        }
    }

    #[test]
    fn an_open_recording_is_filed_as_an_open_row_with_nothing_measured() {
        let open = RecordingOpen {
            id: RecordingId(ID),
            call: CallId(4),
            call_leg: LegId(CALL_LEG),
            leg: LegId(LEG),
            queue: QueueId(3),
            campaign: None,
            started_unix_ms: 1_000,
        };
        let row = recording_open_row(&open, tenant());
        assert_eq!(row.id, Uuid::from_u128(ID));
        assert_eq!(
            (row.call_id, row.leg, row.queue_id, row.started_at_ms),
            (Uuid::from_u128(CALL_LEG), Uuid::from_u128(LEG), 3, 1_000)
        );
        assert_eq!(row.status, crate::store::OPEN_RECORDING);
        assert_eq!(
            (row.ended_at_ms, row.duration_ms, row.silence_ratio),
            (None, None, None)
        );
        assert_eq!((row.spans, row.waveform), (json!([]), Value::Null));
    }

    #[test]
    fn a_finished_recording_files_its_names_figures_spans_and_waveform() {
        let row = recording_row(record(Some(figures())), tenant());
        assert_eq!(row.tenant, tenant());
        assert_eq!((row.agents, row.campaign_id), (vec![7, 9], Some(11)));
        assert_eq!(
            (row.mode.as_str(), row.capture.as_str(), row.status.as_str()),
            ("always-forced", "switch", "damaged")
        );
        assert_eq!((row.started_at_ms, row.ended_at_ms), (1_000, Some(61_000)));
        assert_eq!(row.error.as_deref(), Some("truncated"));
        assert_eq!(
            (row.duration_ms, row.sample_rate, row.channels, row.bytes),
            (Some(59_990), Some(8000), Some(2), Some(959_724))
        );
        assert_eq!(row.silence_ratio, Some(0.25));
        assert_eq!(
            row.spans,
            json!([{"kind": "masked", "start_ms": 5000, "end_ms": 9000, "by": "sup", "ended_by": ""}])
        );
        // Sample values by their f32 decimal form (0.1, not 0.10000000149011612).
        assert_eq!(
            row.waveform,
            json!({
                "peak_dbfs": [-3.5, null],
                "channel_silence": [0.125, 1.0],
                "frames_per_peak": 240,
                "peaks": [[[-0.1, 0.1], [-0.5, 0.75]], [[0.0, 0.0], [0.0, 0.0]]],
            })
        );
    }

    #[test]
    fn a_recording_without_figures_files_no_measurements() {
        let row = recording_row(record(None), tenant());
        assert_eq!(
            (
                row.duration_ms,
                row.sample_rate,
                row.channels,
                row.bytes,
                row.silence_ratio
            ),
            (None, None, None, None, None)
        );
        assert_eq!(row.waveform, Value::Null);
    }

    #[test]
    fn measurements_that_are_not_numbers_are_filed_as_null() {
        let mut f = figures();
        f.silence_ratio = f64::NAN;
        f.peak_dbfs = vec![Some(f64::INFINITY)];
        f.channel_silence = vec![f64::NAN];
        f.peaks = vec![vec![(f32::NAN, f32::NEG_INFINITY)]];
        let row = recording_row(record(Some(f)), tenant());
        assert_eq!(row.silence_ratio, None);
        assert_eq!(row.waveform["peak_dbfs"], json!([null]));
        assert_eq!(row.waveform["channel_silence"], json!([null]));
        assert_eq!(row.waveform["peaks"], json!([[[null, null]]]));
    }
}
