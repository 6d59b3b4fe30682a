//! What the driver needs to know: where FreeSWITCH is, how calls find their queue, how prompts
//! become sound files, and the bound on every queue the driver keeps.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_esl::client::{Auth, ClientConfig};
use switchyard_esl::server::ServerConfig;

use crate::ids::QueueId;
use crate::io::{LegId, SwitchCommand};

/// Events the driver needs from every inbound connection. Added to whatever the caller's
/// [`ClientConfig`] already asks for. `CHANNEL_EXECUTE_COMPLETE` carries mod_amd's verdict
/// (`Application: amd`, `variable_amd_result`) and `CUSTOM avmd::beep` mod_avmd's; CUSTOM
/// comes last because FreeSWITCH reads every word after it as a subclass (DESIGN §9).
/// `RECORD_STOP` ends a switch-side recording (`Record-File-Path`); it comes on the inbound
/// connection, not on a caller's socket (esl-captures `uuid-record*`).
pub const DRIVER_EVENTS: &str = "CHANNEL_ANSWER CHANNEL_PARK CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE RECORD_STOP CUSTOM avmd::beep";

/// The channel variable a dialplan may set to name the node a caller arrives from
/// (`<action application="set" data="switchyard_node=fs2"/>`). Only consulted when the
/// caller's `Core-UUID` does not identify a connected node; see [`super`]'s doc.
pub const NODE_VARIABLE: &str = "switchyard_node";

/// The channel variable every leg switchyard originates carries (`agent`, `customer`,
/// `campaign`, `supervisor`): the sweep kills a leg that has it, is not bridged, and that no
/// call of this instance uses (a leg a restart forgot).
pub const LEG_VARIABLE: &str = "switchyard_leg";

/// Stamped on a caller at its first arrival (Unix ms): a caller the documented dialplan's
/// hold loop sends back after a restart of switchyard rejoins with its seniority (README,
/// `serve`: the dialplan).
pub const ARRIVED_VARIABLE: &str = "switchyard_arrived";

/// One FreeSWITCH node beyond the first: a name (logs, stats, `switchyard_node`) and its
/// inbound Event Socket connection.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub esl: ClientConfig,
}

/// Driver settings. [`DriverConfig::new`] gives working defaults for one FreeSWITCH;
/// [`DriverConfig::add_node`] adds more.
#[derive(Clone)]
pub struct DriverConfig {
    /// The first node's inbound Event Socket connection (address, password, reconnect
    /// backoff...), and the template [`DriverConfig::add_node`] copies. Every node's event list
    /// gets [`DRIVER_EVENTS`] added; filters, if any, must let those through.
    pub esl: ClientConfig,
    /// The first node's name [default: `fs1`].
    pub node_name: String,
    /// Further nodes, each with its own connection. Names must be unique.
    pub more_nodes: Vec<NodeConfig>,
    /// The outbound-socket server the dialplan's `socket` application connects to.
    pub server: ServerConfig,
    /// Queue names and dialled numbers -> queue. A call's queue is the one named by its
    /// `switchyard_queue` channel variable, else the one its `Caller-Destination-Number` maps
    /// to, else `default_queue`.
    pub routes: HashMap<String, QueueId>,
    /// Also route by the names of queues created through the driver's API
    /// (`Command::UpsertQueue`); `routes` wins on a clash.
    pub learn_queue_names: bool,
    /// Accept callers' sockets but admit none to the core until
    /// [`DriverHandle::admit_callers`](super::DriverHandle::admit_callers): for a runtime that
    /// feeds its configuration through the running driver, so that a caller arriving
    /// meanwhile waits (in silence, its socket open) for its queue instead of being refused
    /// as unrouted. Waiting arrivals are bounded by the server's `max_connections` and the
    /// loop's `session_queue`.
    pub hold_callers: bool,
    pub default_queue: Option<QueueId>,
    /// What the store held open at start (calls without a final record, campaign dials whose
    /// attempt was written before their originate): judged against the switch's channels at
    /// the first connection (see the core's module `adopt`).
    pub open_records: OpenRecords,
    /// Cause a caller with no queue is hung up with.
    pub unrouted_cause: String,
    pub prompts: PromptTemplates,
    /// A prompt whose end (its CHANNEL_EXECUTE_COMPLETE) was not seen this long after it
    /// started counts as ended, so that a lost event never leaves a caller in silence (see
    /// the module `prompts`). Zero: no deadline.
    pub prompt_timeout: Duration,
    /// Played instead of music on hold that a node lacks (see the module `sounds`): FreeSWITCH's
    /// US ringback (`us-ring` in vanilla `vars.xml`), looped.
    pub fallback_music: String,
    /// Played instead of a prompt with a file a node lacks: one short beep.
    pub fallback_prompt: String,
    /// `uuid_transfer <leg> <destination> <dialplan> <context>` for voicemail and overflow.
    pub transfer_dialplan: String,
    pub transfer_context: String,
    /// How switchyard's own voicemail boxes record a message (module `voicemail`).
    pub voicemail: VoicemailSetup,
    /// How long a supervisor's phone rings for an eavesdrop before FreeSWITCH gives up.
    pub monitor_ring_timeout: Duration,
    /// API requests waiting for the loop. At the bound, callers of [`super::DriverHandle`]
    /// wait (async backpressure on the HTTP layer, never on the engine).
    pub api_queue: usize,
    /// Messages from outbound sessions (arrivals, DTMF, hangups) waiting for the loop. At the
    /// bound the session tasks wait; their own event queues keep reading the sockets.
    pub session_queue: usize,
    /// Switch commands sent and not yet answered. Past it commands wait in the backlog.
    pub max_commands_in_flight: usize,
    /// Switch commands waiting for a free in-flight slot. Past it a command is dropped,
    /// counted and logged; a dropped originate is reported to the core as a failed leg so
    /// nothing waits for it.
    pub command_backlog: usize,
    /// Records handed to the writer task and not yet taken by it.
    pub record_queue: usize,
    /// Records kept in the loop while `record_queue` is full (the store is slow). Past it a
    /// record is dropped, counted ([`super::DriverStats::records_dropped`]) and logged.
    pub record_overflow: usize,
    /// Most records handed to the [`super::RecordSink`] in one batch.
    pub record_batch: usize,
    /// Live events buffered per subscriber; a slower subscriber sees `Lagged`.
    pub live_capacity: usize,
    /// A `uuid_kill` that found no channel while that leg's originate was still pending is
    /// retried this long after (FreeSWITCH creates the channel in the bgapi thread, so the kill
    /// can overtake it), up to `kill_retries` times.
    pub kill_retry: Duration,
    pub kill_retries: u32,
    /// After an outbound socket closes without a hangup, wait this long for a reconnect (and
    /// its resync) before asking the switch whether the leg still exists.
    pub orphan_grace: Duration,
    /// How often legs this driver originated are checked against the core: a leg the core
    /// has no use for at two checks in a row (and did not hand to the dialplan) is killed and
    /// counted (`orphans_killed`). Zero turns the sweep off.
    pub sweep_interval: Duration,
    /// Have FreeSWITCH join a caller and its agent's leg itself the moment the agent's
    /// originate completes, where the core allows it (a single offer): the originate's
    /// application is `eval` of `${uuid_bridge <caller> <agent>}` instead of `park`, which
    /// saves the event's trip to switchyard and the park-to-bridge step (module `commands`).
    /// Each node is asked at connect whether it expands API calls (`api-expansion`, on by
    /// default); one that does not is bridged the other way, with a warning. Off: every
    /// bridge is a `uuid_bridge` after the handover [default: on].
    pub join_on_answer: bool,
    /// How recordings are captured (the core's module `capture`).
    pub recording: RecordingSetup,
    /// How long [`super::Driver::shutdown`] waits for commands in flight and the record writer.
    pub shutdown_grace: Duration,
    /// Instrumentation (benchmarks, tests); `None` costs one branch per call and command.
    pub probe: Option<Arc<dyn Probe>>,
}

impl DriverConfig {
    /// Defaults for FreeSWITCH at `addr` (`host:port` of mod_event_socket) with `password`.
    pub fn new(addr: impl Into<String>, password: impl Into<String>) -> DriverConfig {
        let mut esl = ClientConfig::new(addr, Auth::Password(password.into()));
        // A driver must hear about every reconnect; waiting minutes for a dead job helps no one.
        esl.bgapi_timeout = Duration::from_secs(120);
        DriverConfig {
            esl,
            node_name: "fs1".into(),
            more_nodes: Vec::new(),
            server: ServerConfig::default(),
            routes: HashMap::new(),
            learn_queue_names: true,
            hold_callers: false,
            default_queue: None,
            open_records: OpenRecords::default(),
            unrouted_cause: "NO_ROUTE_DESTINATION".into(),
            prompts: PromptTemplates::default(),
            prompt_timeout: Duration::from_secs(60),
            fallback_music: "tone_stream://%(2000,4000,440,480);loops=-1".into(),
            fallback_prompt: "tone_stream://%(500,500,800)".into(),
            transfer_dialplan: "XML".into(),
            transfer_context: "default".into(),
            voicemail: VoicemailSetup::default(),
            monitor_ring_timeout: Duration::from_secs(30),
            api_queue: 1024,
            session_queue: 4096,
            max_commands_in_flight: 8192,
            command_backlog: 65_536,
            record_queue: 16_384,
            record_overflow: 262_144,
            record_batch: 512,
            live_capacity: 4096,
            kill_retry: Duration::from_millis(200),
            kill_retries: 5,
            orphan_grace: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(30),
            join_on_answer: true,
            recording: RecordingSetup::default(),
            shutdown_grace: Duration::from_secs(5),
            probe: None,
        }
    }

    /// Adds a node at `addr` with `password`; its other connection settings (timeouts,
    /// backoff, event list) are copied from the first node's as they are now.
    pub fn add_node(
        mut self,
        name: impl Into<String>,
        addr: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        let mut esl = self.esl.clone();
        esl.addr = addr.into();
        esl.auth = Auth::Password(password.into());
        self.more_nodes.push(NodeConfig {
            name: name.into(),
            esl,
        });
        self
    }

    /// Every node, the first one first.
    pub(crate) fn nodes(&self) -> Vec<NodeConfig> {
        let mut all = vec![NodeConfig {
            name: self.node_name.clone(),
            esl: self.esl.clone(),
        }];
        all.extend(self.more_nodes.iter().cloned());
        all
    }

    /// Adds a route (queue name or dialled number).
    pub fn route(mut self, key: impl Into<String>, queue: QueueId) -> Self {
        self.routes.insert(key.into(), queue);
        self
    }
}

impl fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverConfig")
            .field("esl", &self.esl)
            .field("node_name", &self.node_name)
            .field("more_nodes", &self.more_nodes.len())
            .field("routes", &self.routes.len())
            .field("default_queue", &self.default_queue)
            .field("probe", &self.probe.is_some())
            .finish_non_exhaustive()
    }
}

/// How [`crate::io::Prompt`]s become sound files. `{n}` in `number` is replaced by a number
/// word file's name (`1`..`19`, `20`, `30`... `90`, `hundred`, `thousand`), the way the
/// standard FreeSWITCH sound set names them; several files are played as one
/// How recordings are captured. A live recording is two recorder legs FreeSWITCH originates
/// to switchyard's SIP endpoint (`&eavesdrop` of the customer's leg, one per direction); a
/// switch recording is `uuid_record` on the customer's leg, whose file reaches switchyard
/// through a shared directory or an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSetup {
    /// switchyard's recorder endpoint (SIP and RTP), started with the driver. `None`: no live
    /// capture; every recording is made by the switch.
    pub endpoint: Option<EndpointSetup>,
    /// A recorder leg's dial string; `{user}` becomes `rec-<recording>-a` (what the caller
    /// says) or `-b` (what the caller hears), `{addr}` the endpoint's SIP address as bound,
    /// e.g. `sofia/internal/{user}@10.0.0.5:5090` or `sofia/internal/{user}@{addr}`. Used only
    /// with an endpoint.
    pub recorder_dial: Option<String>,
    /// A recorder leg not answered this long is given up, and the switch records instead.
    pub recorder_timeout: Duration,
    /// mod_oreka is set up on the nodes, its `oreka.conf` sending to the endpoint's SIP
    /// address: policies with capture `oreka` fork with `oreka_record`. Each node is asked at
    /// connect whether the module is loaded (`module_exists mod_oreka`): running an
    /// application FreeSWITCH does not have hangs the channel up, so a node without it records
    /// with recorder legs instead.
    pub oreka: bool,
    /// Where live recordings are written (`<recording>.wav`).
    pub live_dir: std::path::PathBuf,
    /// The path `uuid_record` is given; `{file}` becomes `<recording>.wav`. A directory on
    /// the FreeSWITCH host shared with this one, or an upload URL through mod_http_cache
    /// (`http_cache://http://switchyard:8080/v1/recordings/upload/{file}`; README).
    pub switch_path: String,
    /// Where switch recordings appear on this host (the shared directory as mounted here,
    /// or the upload route's directory).
    pub switch_files: std::path::PathBuf,
    /// How long after RECORD_STOP a switch recording may take to appear in `switch_files`
    /// (an upload after the file closed, a slow network mount).
    pub switch_file_wait: Duration,
}

/// How a voicemail message is taken: the greeting, the tone, then FreeSWITCH's `record` on the
/// caller's leg into the switch recordings' directory ([`RecordingSetup::switch_path`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicemailSetup {
    /// Played first ("leave a message after the tone"); vanilla FreeSWITCH's sounds have it.
    pub greeting: String,
    /// The tone after the greeting.
    pub beep: String,
    /// The longest message (`record`'s time limit, whole seconds).
    pub max_message: Duration,
    /// `record`'s silence threshold (energy; FreeSWITCH's own voicemail uses 200).
    pub silence_threshold: u32,
    /// Seconds of silence that end the message (trailing silence is not kept).
    pub silence_hits: u32,
    /// A message shorter than this counts as none (a caller who hung up at the tone).
    pub min_message: Duration,
}

impl Default for VoicemailSetup {
    fn default() -> Self {
        VoicemailSetup {
            greeting: "voicemail/vm-record_message.wav".into(),
            beep: "tone_stream://%(1000,0,640)".into(),
            max_message: Duration::from_secs(180),
            silence_threshold: 200,
            silence_hits: 3,
            min_message: Duration::from_millis(500),
        }
    }
}

/// Where switchyard's recorder endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSetup {
    /// SIP (UDP) for the recorder legs' INVITEs; port 0 picks one.
    pub sip_bind: std::net::SocketAddr,
    /// RTP (UDP), one socket for every recorder leg; port 0 picks one.
    pub rtp_bind: std::net::SocketAddr,
    /// Live recordings at once; beyond, a recording is made by the switch.
    pub max_recordings: usize,
}

impl Default for EndpointSetup {
    fn default() -> Self {
        EndpointSetup {
            sip_bind: std::net::SocketAddr::from(([127, 0, 0, 1], 5090)),
            rtp_bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            max_recordings: 5000,
        }
    }
}

impl Default for RecordingSetup {
    fn default() -> Self {
        RecordingSetup {
            endpoint: None,
            recorder_dial: None,
            recorder_timeout: Duration::from_secs(10),
            oreka: false,
            live_dir: "recordings/live".into(),
            switch_path: "/var/lib/switchyard/recordings/{file}".into(),
            switch_files: "/var/lib/switchyard/recordings".into(),
            switch_file_wait: Duration::from_secs(30),
        }
    }
}

/// Rows the store holds open after a stop: see [`DriverConfig::open_records`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenRecords {
    pub calls: Vec<crate::io::CallOpen>,
    /// Each dial with its contact's number and zone.
    pub dials: Vec<(crate::dialer::AttemptStart, String, String)>,
}

/// `file_string://a!b!c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptTemplates {
    /// Before the position number ("you are caller number").
    pub position_before: Vec<String>,
    /// After it (e.g. "in line"); empty by default.
    pub position_after: Vec<String>,
    /// Before the minutes ("your estimated wait time is").
    pub wait_before: Vec<String>,
    /// After the minutes.
    pub wait_after: Vec<String>,
    /// Said instead of a number of minutes when the wait is under a minute.
    pub wait_under_a_minute: Vec<String>,
    /// One file per number word.
    pub number: String,
}

impl Default for PromptTemplates {
    fn default() -> Self {
        PromptTemplates {
            position_before: vec!["ivr/ivr-you_are_number.wav".into()],
            position_after: Vec::new(),
            wait_before: vec!["ivr/ivr-estimated_wait_time.wav".into()],
            wait_after: vec!["time/minutes.wav".into()],
            wait_under_a_minute: vec!["ivr/ivr-less_than_one_minute.wav".into()],
            number: "digits/{n}.wav".into(),
        }
    }
}

/// Cheap instrumentation hooks, called on the driver's loop: keep them to a timestamp and a
/// push. Used by the loopback benchmark to measure decision latency.
pub trait Probe: Send + Sync + 'static {
    /// A `CallArrived` is about to be fed to the core.
    fn call_arrived(&self, _leg: LegId, _at: Instant) {}
    /// A switch command's Event Socket requests are in the client's queue, in order (the
    /// client writes them as soon as the socket takes them).
    fn command_sent(&self, _cmd: &SwitchCommand, _at: Instant) {}
    /// An answering-machine verdict is about to be fed to the core.
    fn machine_detection(&self, _leg: LegId, _result: crate::io::AmdResult, _at: Instant) {}
}
